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

#include <filesystem>
#include <fstream>
#include <set>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

namespace {

std::vector<Report> wait_for_reports(const TempDir& dir, std::size_t count) {
    std::vector<Report> reports;
    // The outcome is the number of reports, which callers assert on.
    static_cast<void>(wait_until([&] { return (reports = read_reports(dir.path())).size() >= count; }));
    return reports;
}

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
    const auto reports = wait_for_reports(dir, 2);
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
    auto reports = wait_for_reports(dir, 2);
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
    const auto reports = wait_for_reports(dir, 2);
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
    const auto reports = wait_for_reports(dir, 2);
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
    const auto reports = wait_for_reports(dir, 1);
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
    const auto einhorn_reports = wait_for_reports(only_einhorn, 1);
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
    // A fixed port: the kernel forgets an ephemeral (port 0) binding when the socket is shut down.
    Process run(preforkctl({"-n", "1", "--backoff", "20ms..1s", "-l", "127.0.0.1:18937", "--", "/usr/bin/python3",
                            "-c", script, marker}));
    ASSERT_TRUE(wait_until([&] { return run.err().find("listening on it again") != std::string::npos; }))
        << run.err();
    EXPECT_EQ(lines_with(run.err(), "listening on it again").size(), 1u);
    // The re-armed socket accepts connections again.
    EXPECT_TRUE(knock(18937));
}

TEST(Sockets, UserDropsRealEffectiveAndSavedIdsAfterBinding) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    TempDir dir;
    ::chmod(dir.path().c_str(), 0777);
    Process run(preforkctl({"-n", "1", "--user", "nobody", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}),
            {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir, 1);
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
