// Socket hand-off modes (SPEC §3, §5): several listeners, unix sockets, reuseport, child mode, adoption
// of systemd sockets, hand-off dialects, the shared-socket guard and --user.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

namespace {

// "socket:[12345]" for an fd of another process.
std::string fd_target(const std::string& pid, int fd) {
    std::error_code error;
    return std::filesystem::read_symlink("/proc/" + pid + "/fd/" + std::to_string(fd), error).string();
}

// Connects to 127.0.0.1:port and closes; true when the connection was accepted by the kernel.
bool knock(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return connected;
}

// Connects to 127.0.0.1:port and reads the "pid=<pid>" that probe_worker --serve answers; "" when refused.
std::string served_by(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        char buffer[64];
        ssize_t n = 0;
        while ((n = ::read(fd, buffer, sizeof buffer)) > 0) reply.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (!reply.empty() && reply.back() == '\n') reply.pop_back();
    return reply.starts_with("pid=") ? reply.substr(4) : "";
}

// What probe_worker --shut-listener said: how long fd 3 stayed shut down, its port after and before.
struct Rearm {
    long gap_us = -1;
    int port = -1;
    int port_before = -1;
    std::string pid;
};

std::optional<Rearm> rearm_reported(const std::string& out) {
    for (const std::string& line : lines_with(out, "fd 3 ")) {
        Rearm rearm;
        char pid[32] = "";
        if (std::sscanf(line.substr(line.find("fd 3 ")).c_str(),
                        "fd 3 listening again after %ld us on port %d (was %d) pid=%31s", &rearm.gap_us, &rearm.port,
                        &rearm.port_before, pid) == 4) {
            rearm.pid = pid;
            return rearm;
        }
        if (line.find("fd 3 not listening 5 s after its shutdown") != std::string::npos) return Rearm{};
    }
    return std::nullopt;
}

std::string status_line(const std::string& pid, const std::string& key) {
    std::ifstream in("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(key + ":")) {
            std::string value = line.substr(key.size() + 1);
            value.erase(0, value.find_first_not_of(" \t"));
            value.erase(value.find_last_not_of(" \t") + 1);
            return value;
        }
    }
    return "";
}

}  // namespace

TEST(Sockets, TwoListenersArriveAtFds3And4InOrderWithTheirNames) {
    TempDir dir;
    const std::string path = dir.path() + "/admin.sock";
    Process run(preforkctl({"-n", "2", "-l", "127.0.0.1:0,name=web", "-l", "unix:" + path + ",name=admin,mode=0600",
                        "--", PROBE_WORKER_BIN}),
            {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    std::set<std::string> fd3;
    for (const Report& report : reports) {
        EXPECT_EQ(report.at("fds"), "0,1,2,3,4");
        EXPECT_EQ(report.at("env.LISTEN_FDS"), "2");
        EXPECT_EQ(report.at("env.LISTEN_FDNAMES"), "web:admin");
        fd3.insert(fd_target(report.at("pid"), 3));
    }
    EXPECT_EQ(fd3.size(), 1u) << "shared mode: every worker holds the same socket";
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(Sockets, StaleUnixSocketFileIsReplacedButALiveOneIsNot) {
    TempDir dir;
    const std::string path = dir.path() + "/app.sock";
    {
        // A socket file whose server is gone.
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ::close(fd);
    }
    Process first(preforkctl({"-n", "1", "-l", "unix:" + path, "--", PROBE_WORKER_BIN}));
    ASSERT_TRUE(wait_until([&] { return first.err().find("listening on unix:" + path) != std::string::npos; }))
        << first.err();
    Process second(preforkctl({"-n", "1", "-l", "unix:" + path, "--", PROBE_WORKER_BIN}));
    EXPECT_EQ(second.wait(), 4);
    EXPECT_THAT(second.err(), HasSubstr("cannot bind unix:" + path + ": another process is listening on it"));
}

TEST(Sockets, ReuseportGivesEachSlotItsOwnSocketAndTheReplacementTheSameOne) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--socket-mode", "reuseport", "--backoff", "20ms..1s", "-l", "127.0.0.1:0", "--",
                        PROBE_WORKER_BIN}),
            {{"PROBE_DIR=" + dir.path()}});
    auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    std::map<std::string, std::string> socket_of_slot;
    for (const Report& report : reports) {
        EXPECT_EQ(report.at("fds"), "0,1,2,3");
        EXPECT_EQ(report.at("fd3_accepting"), "1");
        socket_of_slot[report.at("env.PREFORK_SLOT")] = fd_target(report.at("pid"), 3);
    }
    ASSERT_EQ(socket_of_slot.size(), 2u);
    EXPECT_NE(socket_of_slot["0"], socket_of_slot["1"]) << "each slot has a socket of its own";
    EXPECT_THAT(socket_of_slot["0"], HasSubstr("socket:["));

    const Report victim = reports[0].at("env.PREFORK_SLOT") == "0" ? reports[0] : reports[1];
    ::kill(std::stoi(victim.at("pid")), SIGKILL);
    ASSERT_TRUE(wait_until([&] { return (reports = read_reports(dir.path())).size() == 3; })) << run.err();
    for (const Report& report : reports) {
        if (report.at("pid") != victim.at("pid") && report.at("env.PREFORK_SLOT") == "0") {
            EXPECT_EQ(fd_target(report.at("pid"), 3), socket_of_slot["0"]) << "the slot's socket outlives its worker";
        }
    }
}

TEST(Sockets, ReuseportSpreadsConnectionsOverBothExampleServers) {
    Process run(preforkctl({"-n", "2", "--socket-mode", "reuseport", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 2; })) << run.err();
    const int port = listening_port(run.err());
    std::set<std::string> pids;
    ASSERT_TRUE(wait_until([&] {
        const std::string body = http_get(port);
        if (!body.empty()) pids.insert(body.substr(0, body.find(' ')));
        return pids.size() == 2;
    }));
}

TEST(Sockets, ChildModeBindsNothingAndTellsWorkersWhereToBind) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--socket-mode", "child", "-l", "127.0.0.1:18932", "--", PROBE_WORKER_BIN,
                        "{host}:{port}"}),
            {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    for (const Report& report : reports) {
        EXPECT_EQ(report.at("fds"), "0,1,2");
        EXPECT_EQ(report.at("env.PREFORK_REUSEPORT"), "1");
        EXPECT_EQ(report.at("env.HOST"), "127.0.0.1");
        EXPECT_EQ(report.at("env.PORT"), "18932");
        EXPECT_EQ(report.at("argv"), "127.0.0.1:18932");
        EXPECT_EQ(report.count("env.LISTEN_FDS"), 0u);
    }
}

TEST(Sockets, ChildModeExampleServersBindTheirOwnReuseportSockets) {
    Process run(preforkctl({"-n", "2", "--socket-mode", "child", "-l", "127.0.0.1:18933", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 2; })) << run.out() << run.err();
    std::set<std::string> pids;
    ASSERT_TRUE(wait_until([&] {
        const std::string body = http_get(18933);
        if (!body.empty()) pids.insert(body.substr(0, body.find(' ')));
        return pids.size() == 2;
    }));
}

TEST(Sockets, SocketsFromSystemdAreAdoptedAndFannedOutWithEachWorkersOwnListenPid) {
    if (!on_path("systemd-socket-activate")) GTEST_SKIP() << "systemd-socket-activate is missing (package systemd)";
    TempDir dir;
    Options options{{"PROBE_DIR=" + dir.path()}};
    // systemd-socket-activate passes on only the variables named with -E.
    options.prefix = {"systemd-socket-activate", "-l", "127.0.0.1:18934", "--fdname=web", "-E",
                      "PROBE_DIR=" + dir.path()};
    Process run(preforkctl({"-n", "2", "--", PROBE_WORKER_BIN}), options);
    // systemd-socket-activate starts preforkctl at the first connection, as systemd would.
    ASSERT_TRUE(wait_until([&] { return knock(18934); }));
    const auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    for (const Report& report : reports) {
        EXPECT_EQ(report.at("fds"), "0,1,2,3");
        EXPECT_EQ(report.at("env.LISTEN_PID"), report.at("pid"));
        EXPECT_EQ(report.at("env.LISTEN_FDNAMES"), "web");
        EXPECT_EQ(report.at("fd3_accepting"), "1");
    }
    EXPECT_THAT(run.err(), HasSubstr("listening on 127.0.0.1:18934 (fd 3 in workers, name web, adopted from systemd)"));
}

TEST(Sockets, ListenTogetherWithSystemdSocketsIsAnError) {
    if (!on_path("systemd-socket-activate")) GTEST_SKIP() << "systemd-socket-activate is missing (package systemd)";
    Options options;
    options.prefix = {"systemd-socket-activate", "-l", "127.0.0.1:18935"};
    Process run(preforkctl({"-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}), options);
    ASSERT_TRUE(wait_until([&] { return knock(18935); }));
    EXPECT_EQ(run.wait(), 2);
    EXPECT_THAT(run.err(), HasSubstr("preforkctl: error: --listen: preforkctl was given 1 socket(s) by systemd"));
}

TEST(Sockets, EinhornAndServerStarterDialectsDescribeTheSameFds) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--fd-env", "systemd,einhorn,server-starter", "-l", "127.0.0.1:0", "-l",
                        "127.0.0.1:0", "--", PROBE_WORKER_BIN}),
            {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << run.err();
    const Report& report = reports[0];
    EXPECT_EQ(report.at("env.EINHORN_FD_COUNT"), "2");
    EXPECT_EQ(report.at("env.EINHORN_FD_0"), "3");
    EXPECT_EQ(report.at("env.EINHORN_FD_1"), "4");
    EXPECT_THAT(report.at("env.SERVER_STARTER_PORT"), ::testing::MatchesRegex(R"(127\.0\.0\.1:[0-9]+=3;127\.0\.0\.1:[0-9]+=4)"));
    EXPECT_EQ(report.at("env.LISTEN_FDS"), "2");

    TempDir only_einhorn;
    Process einhorn(preforkctl({"-n", "1", "--fd-env", "einhorn", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}),
                {{"PROBE_DIR=" + only_einhorn.path()}});
    const auto einhorn_reports = wait_for_reports(only_einhorn.path(), 1);
    ASSERT_EQ(einhorn_reports.size(), 1u);
    EXPECT_EQ(einhorn_reports[0].count("env.LISTEN_FDS"), 0u);
    EXPECT_EQ(einhorn_reports[0].at("env.EINHORN_FD_0"), "3");
}

TEST(Sockets, SharedSocketShutDownByAWorkerIsListenedOnAgain) {
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 is missing (the worker is a script)";
    // The first worker shuts the shared socket down and exits, as some servers do on their way out.
    const std::string script =
        "import os, socket, sys, time\n"
        "s = socket.socket(fileno=3)\n"
        "if os.path.exists(sys.argv[1]):\n"
        "    time.sleep(60)\n"
        "open(sys.argv[1], 'w').close()\n"
        "s.shutdown(socket.SHUT_RDWR)\n";
    TempDir dir;
    const std::string marker = dir.path() + "/shut";
    // A fixed port, which the socket keeps through the shutdown (port 0: see the tests below).
    Process run(preforkctl({"-n", "1", "--backoff", "20ms..1s", "-l", "127.0.0.1:18937", "--", "/usr/bin/python3",
                            "-c", script, marker}));
    ASSERT_TRUE(wait_until([&] { return run.err().find("listening on it again") != std::string::npos; }))
        << run.err();
    EXPECT_EQ(lines_with(run.err(), "listening on it again").size(), 1u);
    // The re-armed socket accepts connections again.
    EXPECT_TRUE(knock(18937));
}

// A worker that shuts the shared socket down and keeps running (serving, even) must not stop its siblings
// from accepting until it exits: preforkctl sees the hang-up at once and listens again, on the same port
// although it came from port 0 (the shutdown released it).
TEST(Sockets, SharedSocketShutDownByALivingWorkerListensAgainAtOnceOnTheSamePort) {
    TempDir dir;
    const std::string go = dir.path() + "/go";
    Process run(preforkctl({"-n", "2", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN, "--if-slot", "0", "--await", go,
                            "--if-slot", "0", "--shut-listener", dir.path() + "/shut", "--serve"}),
                {{"PROBE_DIR=" + dir.path()}});
    // Slot 1 serves first (slot 0 waits for the go), so it is the sibling that must keep taking connections.
    auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    const std::string sibling = reports[0].at("env.PREFORK_SLOT") == "1" ? reports[0].at("pid") : reports[1].at("pid");
    const int port = listening_port(run.err());
    ASSERT_TRUE(wait_until([&] { return served_by(port) == sibling; })) << run.out() << run.err();
    std::ofstream(go).close();

    std::optional<Rearm> rearm;
    ASSERT_TRUE(wait_until([&] { return (rearm = rearm_reported(run.out())).has_value(); })) << run.out() << run.err();
    ASSERT_GE(rearm->gap_us, 0) << "the shut-down socket was not listened on again while its worker lived\n"
                                << run.out() << run.err();
    EXPECT_LT(rearm->gap_us, 200'000) << "the sibling could not accept for that long";
    EXPECT_EQ(rearm->port_before, port);
    EXPECT_EQ(rearm->port, port) << "the port changed under the workers' feet";
    EXPECT_EQ(lines_with(run.err(), "shut down the shared socket 127.0.0.1:" + std::to_string(port) +
                                        "; listening on it again").size(), 1u) << run.err();
    // The sibling takes connections again (both do: the worker that shut the socket down serves too).
    EXPECT_TRUE(wait_until([&] { return served_by(port) == sibling; })) << run.out() << run.err();
    EXPECT_TRUE(is_alive(std::stoi(rearm->pid))) << "the worker that shut the socket down is still running";
    EXPECT_EQ(read_reports(dir.path()).size(), 2u) << "no worker was restarted\n" << run.out() << run.err();
}

// In reuseport mode the slot's own socket comes back, to the same worker: it accepts there again.
TEST(Sockets, ReuseportSocketShutDownByALivingWorkerListensAgainForThatSlot) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--socket-mode", "reuseport", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN,
                            "--if-slot", "0", "--shut-listener", dir.path() + "/shut", "--serve"}),
                {{"PROBE_DIR=" + dir.path()}});
    std::optional<Rearm> rearm;
    ASSERT_TRUE(wait_until([&] { return (rearm = rearm_reported(run.out())).has_value(); })) << run.out() << run.err();
    ASSERT_GE(rearm->gap_us, 0) << "slot 0's socket was not listened on again while its worker lived\n"
                                << run.out() << run.err();
    EXPECT_LT(rearm->gap_us, 200'000);
    const int port = listening_port(run.err());
    EXPECT_EQ(rearm->port, port);
    EXPECT_EQ(lines_with(run.err(), "shut down slot 0's socket 127.0.0.1:" + std::to_string(port) +
                                        "; listening on it again").size(), 1u) << run.err();
    // Connections from many source ports spread over both slots' sockets; slot 0's worker answers on its own.
    EXPECT_TRUE(wait_until([&] { return served_by(port) == rearm->pid; })) << run.out() << run.err();
}

// The replacement of a reuseport slot whose worker shut its socket down and exited gets a listening socket;
// it used to inherit a dead one, fail at once and bring the whole service down at the restart threshold.
TEST(Sockets, ReuseportReplacementOfAWorkerThatShutItsSocketDownGetsALiveOne) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--socket-mode", "reuseport", "--backoff", "20ms..100ms", "--max-restarts",
                            "3", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN, "--if-slot", "0", "--shut-listener",
                            dir.path() + "/shut", "--exit-if-shut", "1", "--serve"}),
                {{"PROBE_DIR=" + dir.path()}});
    std::vector<Report> reports;
    std::optional<Report> replacement;
    ASSERT_TRUE(wait_until([&] {
        for (const Report& report : read_reports(dir.path())) {
            if (report.at("env.PREFORK_SLOT") == "0" && rearm_reported(run.out()) &&
                report.at("pid") != rearm_reported(run.out())->pid) {
                replacement = report;
            }
        }
        return replacement.has_value() || run.exited();
    })) << run.out() << run.err();
    ASSERT_TRUE(replacement.has_value()) << run.out() << run.err();
    EXPECT_EQ(replacement->at("fd3_accepting"), "1") << run.out();
    const int port = listening_port(run.err());
    EXPECT_TRUE(wait_until([&] { return served_by(port) == replacement->at("pid"); })) << run.out() << run.err();
    EXPECT_FALSE(run.exited()) << run.err();
    EXPECT_EQ(lines_with(run.out(), "cannot serve").size(), 0u) << run.out();
}

// A slot added with SIGTTIN has its reuseport socket watched too; removing it with SIGTTOU unwatches it first.
TEST(Sockets, ReuseportSocketOfASlotAddedLaterIsWatchedToo) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--socket-mode", "reuseport", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN,
                            "--if-slot", "1", "--shut-listener", dir.path() + "/shut", "--serve"}),
                {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    run.signal(SIGTTIN);
    std::optional<Rearm> rearm;
    ASSERT_TRUE(wait_until([&] { return (rearm = rearm_reported(run.out())).has_value(); })) << run.out() << run.err();
    ASSERT_GE(rearm->gap_us, 0) << run.out() << run.err();
    EXPECT_LT(rearm->gap_us, 200'000);
    EXPECT_EQ(rearm->port, listening_port(run.err()));
    EXPECT_TRUE(wait_until([&] { return served_by(rearm->port) == rearm->pid; })) << run.out() << run.err();
    run.signal(SIGTTOU);
    ASSERT_TRUE(wait_until([&] { return !is_alive(std::stoi(rearm->pid)); })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(lines_with(run.err(), "listening on it again").size(), 1u) << run.err();
}

// A unix socket cannot listen again after a shutdown: preforkctl says so once and stops watching it (the
// hang-up stays reported for good; watching on would log it in a busy loop).
TEST(Sockets, UnixSocketShutDownByAWorkerIsReportedOnce) {
    TempDir dir;
    const std::string path = dir.path() + "/app.sock";
    Process run(preforkctl({"-n", "1", "-l", "unix:" + path, "--", PROBE_WORKER_BIN, "--shut-listener",
                            dir.path() + "/shut"}),
                {{"PROBE_DIR=" + dir.path()}});
    const std::string error = "a unix socket cannot listen again";
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), error).empty(); })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(lines_with(run.err(), error).size(), 1u) << run.err().substr(0, 2000);
}

TEST(Sockets, UserDropsRealEffectiveAndSavedIdsAfterBinding) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    TempDir dir;
    ::chmod(dir.path().c_str(), 0777);
    Process run(preforkctl({"-n", "1", "--user", "nobody", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}),
            {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << run.err();
    const std::string pid = reports[0].at("pid");
    EXPECT_EQ(status_line(pid, "Uid"), "65534\t65534\t65534\t65534");
    EXPECT_EQ(status_line(pid, "Gid"), "65534\t65534\t65534\t65534");
    EXPECT_EQ(status_line(pid, "Groups"), "65534");
    EXPECT_EQ(reports[0].at("fd3_accepting"), "1");
}

TEST(Sockets, UnknownUserIsOneClearErrorAndNothingStarts) {
    Process run(preforkctl({"--user", "no-such-user-here", "--", PROBE_WORKER_BIN}));
    EXPECT_EQ(run.wait(), 2);
    EXPECT_EQ(run.err(), "preforkctl: error: --user: unknown user 'no-such-user-here'\n");
}
