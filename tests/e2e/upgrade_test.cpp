// ctl upgrade (SPEC §14): preforkctl re-executes itself in place. The same pid, the same workers (never
// signalled), the same counters and descriptors afterwards; no request fails and no line is lost, doubled or
// torn across it; a binary that is missing or will not take the state is refused with nothing changed; a
// worker that dies while no image is looking is reaped and restarted by the new one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;
using nlohmann::json;

namespace {

json status_of(const std::string& name) {
    const CtlResult result = ctl({"--name", name, "status", "--json"});
    return result.status == 0 ? json::parse(result.out, nullptr, false) : json(json::value_t::discarded);
}

bool all_ready(const json& status, std::size_t count) {
    if (!status.is_object() || status["slots"].size() != count) return false;
    for (const json& slot : status["slots"]) {
        if (slot["state"] != "ready") return false;
    }
    return true;
}

// slot -> pid of its worker.
std::map<int, int> worker_pids(const json& status) {
    std::map<int, int> pids;
    for (const json& slot : status["slots"]) pids[slot["slot"].get<int>()] = slot["pid"].get<int>();
    return pids;
}

// fd number -> what it is, for preforkctl itself: an upgrade keeps exactly what it had.
std::map<std::string, std::string> descriptors_of(pid_t pid) {
    std::map<std::string, std::string> fds;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::error_code error;
        const auto target = std::filesystem::read_symlink(entry.path(), error);
        fds[entry.path().filename().string()] = error ? "?" : target.string();
    }
    return fds;
}

void write_script(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
    ::chmod(path.c_str(), 0755);
}

CtlResult upgrade(const std::string& name, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--name", name, "upgrade"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ctl(args);
}

}  // namespace

TEST(Upgrade, TenUpgradesKeepThePidTheWorkersTheCountersAndEveryDescriptor) {
    Process run(preforkctl({"--name", "up", "-n", "2", "-l", "127.0.0.1:0", "--backoff", "20ms..1s", "--",
                            HELLO_SERVER_BIN}));
    json status;
    ASSERT_TRUE(wait_until([&] { return all_ready(status = status_of("up"), 2); })) << run.err();
    // A restart first, so that there is a history to keep.
    const int crashed = worker_pids(status).at(0);
    ::kill(crashed, SIGKILL);
    ASSERT_TRUE(wait_until([&] {
        status = status_of("up");
        return all_ready(status, 2) && worker_pids(status).at(0) != crashed;
    })) << run.err();
    const std::map<int, int> workers = worker_pids(status);
    const auto fds = descriptors_of(run.pid());
    const int port = listening_port(run.err());
    ASSERT_GT(port, 0);

    for (int i = 1; i <= 10; ++i) {
        const CtlResult result = upgrade("up");
        ASSERT_EQ(result.status, 0) << result.err << run.err();
        EXPECT_THAT(result.out, HasSubstr("upgraded in place from")) << i;
        EXPECT_THAT(result.out, HasSubstr("pid " + std::to_string(run.pid()))) << i;
        EXPECT_FALSE(run.exited());
        // Every request is answered by one of the same two workers.
        const int served = pid_in_body(http_get(port));
        EXPECT_TRUE(served == workers.at(0) || served == workers.at(1)) << served;
    }
    status = status_of("up");
    ASSERT_TRUE(status.is_object()) << run.err();
    EXPECT_EQ(status["pid"], run.pid());
    EXPECT_EQ(worker_pids(status), workers);
    EXPECT_EQ(status["upgrades"], 10);
    EXPECT_EQ(status["slots"][0]["restarts_total"], 1);
    EXPECT_EQ(status["slots"][0]["last_exit"]["text"], "SIGKILL");
    EXPECT_EQ(status["slots"][1]["restarts_total"], 0);
    EXPECT_GE(status["uptime_seconds"].get<double>(), status["slots"][1]["uptime_seconds"].get<double>() - 0.5);
    // Not one descriptor more or less: what the old image kept is what the new one holds, nothing leaks.
    EXPECT_EQ(descriptors_of(run.pid()), fds);
    for (const auto& [slot, pid] : workers) {
        EXPECT_EQ(parent_of(pid), run.pid());
        EXPECT_TRUE(is_alive(pid));
    }
    EXPECT_EQ(lines_with(run.err(), "upgraded in place from").size(), 10u);

    // The new image supervises as the old one did: a crash is restarted, and a stop is clean.
    ::kill(workers.at(1), SIGKILL);
    ASSERT_TRUE(wait_until([&] {
        status = status_of("up");
        return all_ready(status, 2) && worker_pids(status).at(1) != workers.at(1);
    })) << run.err();
    EXPECT_EQ(status["slots"][1]["restarts_total"], 1);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(zombie_children(run.pid()), 0);
}

// The workers' NOTIFY_SOCKET files stay where they are across an upgrade (the new image runs with the same pid,
// so in the same directory), and the new image removes them as the old one would have: a replaced worker's
// at once, the rest and the directory at the end.
TEST(Upgrade, TheWorkersNotifySocketFilesAreTakenOverAndRemovedByTheNewImage) {
    Process run(preforkctl({"--name", "upnotify", "-n", "2", "--ready", "notify", "--backoff", "20ms..1s", "--",
                            NOTIFY_WORKER_BIN}));
    json status;
    ASSERT_TRUE(wait_until([&] { return all_ready(status = status_of("upnotify"), 2); })) << run.err();
    const std::map<int, int> workers = worker_pids(status);
    // "worker pid=P ... notify=ADDRESS", one line per worker started.
    auto socket_of = [&](int pid) {
        for (const std::string& line : lines_with(run.out(), "| worker pid=" + std::to_string(pid) + " ")) {
            const std::size_t at = line.find(" notify=");
            if (at != std::string::npos) return line.substr(at + 8, line.find(' ', at + 8) - at - 8);
        }
        return std::string();
    };
    const std::string first = socket_of(workers.at(0));
    const std::string second = socket_of(workers.at(1));
    ASSERT_EQ(first.rfind('/', 0), 0u) << "a socket file: " << first << "\n" << run.out();
    const std::string directory = first.substr(0, first.rfind('/'));
    EXPECT_EQ(directory, second.substr(0, second.rfind('/')));

    const CtlResult result = upgrade("upnotify");
    ASSERT_EQ(result.status, 0) << result.err << run.err();
    EXPECT_EQ(::access(first.c_str(), F_OK), 0);
    EXPECT_EQ(::access(second.c_str(), F_OK), 0);

    ::kill(workers.at(0), SIGKILL);
    ASSERT_TRUE(wait_until([&] {
        status = status_of("upnotify");
        return all_ready(status, 2) && worker_pids(status).at(0) != workers.at(0);
    })) << run.err();
    const std::string replacement = socket_of(worker_pids(status).at(0));
    EXPECT_EQ(replacement.substr(0, replacement.rfind('/')), directory);
    EXPECT_NE(::access(first.c_str(), F_OK), 0) << "the replaced worker's file is left: " << first;
    EXPECT_EQ(::access(replacement.c_str(), F_OK), 0);

    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_NE(::access(directory.c_str(), F_OK), 0) << directory << " is left behind";
}

TEST(Upgrade, NoRequestFailsWhileUpgradesHappenUnderLoad) {
    Process run(preforkctl({"--name", "busy", "-n", "2", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return all_ready(status_of("busy"), 2); })) << run.err();
    const int port = listening_port(run.err());
    std::atomic<bool> done{false};
    std::atomic<int> answered{0};
    std::atomic<int> failed{0};
    std::string first_failure;
    std::mutex failure_mutex;
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
        clients.emplace_back([&] {
            while (!done) {
                const HttpReply reply = http_request(port, "/", 5s);
                if (reply.status == 200) {
                    ++answered;
                } else {
                    ++failed;
                    const std::lock_guard lock(failure_mutex);
                    if (first_failure.empty()) first_failure = reply.failure;
                }
            }
        });
    }
    ASSERT_TRUE(wait_until([&] { return answered > 100; }));
    for (int i = 0; i < 5; ++i) {
        const int before = answered;
        const CtlResult result = upgrade("busy");
        EXPECT_EQ(result.status, 0) << result.err;
        EXPECT_TRUE(wait_until([&] { return answered > before + 50; }));
    }
    done = true;
    for (std::thread& client : clients) client.join();
    EXPECT_EQ(failed, 0) << first_failure;
    EXPECT_GT(answered, 300);
}

TEST(Upgrade, NumberedLinesHaveNoGapNoDuplicateAndNoTornLineAcrossUpgrades) {
    TempDir dir;
    // Each line is written in two pieces with a pause between them, so that an upgrade mostly comes while the
    // old image holds half a line: the new one must finish it. The worker writes until the test has done its
    // upgrades (however long they take, under ASan too), then says how many lines it wrote.
    const std::string stop = dir.path() + "/stop";
    const std::string writer = "i=0; while [ ! -e " + stop +
                               " ]; do i=$((i+1)); printf 'line %d begins' $i; sleep 0.003; "
                               "printf ' and ends %d\\n' $i; done; echo \"wrote $i\"; sleep 1000";
    Process run(preforkctl({"--name", "lines", "-n", "1", "--", "sh", "-c", writer}));
    ASSERT_TRUE(wait_until([&] { return run.out().find("line 5 ") != std::string::npos; })) << run.err();
    for (int i = 0; i < 5; ++i) {
        const std::size_t before = lines_with(run.out(), " and ends ").size();
        const CtlResult result = upgrade("lines");
        ASSERT_EQ(result.status, 0) << result.err << run.err();
        // The worker wrote on meanwhile, and the new image relays it.
        ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), " and ends ").size() > before + 3; })) << run.err();
    }
    std::ofstream(stop).put('\n');
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.out(), "| wrote ").empty(); }, 30s)) << run.err();
    const std::string last = lines_with(run.out(), "| wrote ").front();
    const int written = std::stoi(last.substr(last.rfind(' ') + 1));
    const std::regex shape(R"(lines\.0 \| line (\d+) begins and ends (\d+))");
    int expected = 1;
    for (const std::string& line : lines_with(run.out(), "line ")) {
        std::smatch match;
        ASSERT_TRUE(std::regex_match(line, match, shape)) << "torn: " << line;
        ASSERT_EQ(match[1], match[2]) << line;
        ASSERT_EQ(std::stoi(match[1]), expected) << "gap or duplicate at " << line;
        ++expected;
    }
    EXPECT_EQ(expected, written + 1);
    EXPECT_EQ(lines_with(run.err(), "upgraded in place from").size(), 5u);
    EXPECT_EQ(status_of("lines")["out"]["lines"], written + 1);
}

TEST(Upgrade, AMissingBinaryOrOneThatRefusesTheStateChangesNothing) {
    TempDir dir;
    Process run(preforkctl({"--name", "stay", "-n", "2", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    json status;
    ASSERT_TRUE(wait_until([&] { return all_ready(status = status_of("stay"), 2); })) << run.err();
    const auto workers = worker_pids(status);
    const auto fds = descriptors_of(run.pid());

    const CtlResult missing = upgrade("stay", {"--binary", dir.path() + "/no-such-preforkctl"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_THAT(missing.err, HasSubstr("cannot execute " + dir.path() + "/no-such-preforkctl: No such file"));

    // A preforkctl that reads another state version says so and exits non-zero: its words reach the client.
    const std::string newer = dir.path() + "/preforkctl-v2";
    write_script(newer, "#!/bin/sh\necho 'preforkctl: error: the upgrade state has version 1, this preforkctl "
                        "reads 2 only' >&2\nexit 3\n");
    const CtlResult refused = upgrade("stay", {"--binary", newer});
    EXPECT_EQ(refused.status, 1);
    EXPECT_THAT(refused.err, HasSubstr("refused the state (exit 3: preforkctl: error: the upgrade state has version 1"));

    // A program that is no preforkctl at all, and exits 0 without the answer, is refused too.
    const CtlResult not_preforkctl = upgrade("stay", {"--binary", "/bin/true"});
    EXPECT_EQ(not_preforkctl.status, 1);
    EXPECT_THAT(not_preforkctl.err, HasSubstr("does not take over a preforkctl"));

    // Nothing changed: same workers, same descriptors, no upgrade counted, and it serves.
    status = status_of("stay");
    EXPECT_EQ(worker_pids(status), workers);
    EXPECT_EQ(status["upgrades"], 0);
    EXPECT_EQ(descriptors_of(run.pid()), fds);
    EXPECT_GT(pid_in_body(http_get(listening_port(run.err()))), 0);
    EXPECT_EQ(lines_with(run.err(), "refused").size(), 3u) << run.err();
    // The check-only runs left nothing behind.
    EXPECT_EQ(zombie_children(run.pid()), 0);
    EXPECT_EQ(live_children(run.pid()).size(), 2u);
}

TEST(Upgrade, AWorkerThatDiesDuringTheExecWindowIsReapedAndRestartedByTheNewImage) {
    TempDir dir;
    Process run(preforkctl({"--name", "window", "-n", "2", "-l", "127.0.0.1:0", "--backoff", "20ms..1s", "--",
                            HELLO_SERVER_BIN}));
    json status;
    ASSERT_TRUE(wait_until([&] { return all_ready(status = status_of("window"), 2); })) << run.err();
    const int victim = worker_pids(status).at(1);
    // The "new binary" kills the worker once the old image is gone and waits until it is a zombie, before
    // it becomes preforkctl: its exit happens while no preforkctl image runs. Shell builtins only: a shell
    // that forked would reap every child of its pid, the worker too, and the exit would be lost to the test.
    const std::string stat = "/proc/" + std::to_string(victim) + "/stat";
    const std::string wrapper = dir.path() + "/preforkctl-wrapper";
    write_script(wrapper, "#!/bin/sh\ncase \"$1\" in --upgrade-state=*)\n  kill -9 " + std::to_string(victim) +
                              "\n  while read -r pid comm state rest < " + stat +
                              " && [ \"$state\" != Z ]; do :; done\n  echo zombie > " + dir.path() +
                              "/seen\n;;\nesac\nexec " PREFORKCTL_BIN " \"$@\"\n");
    const CtlResult result = upgrade("window", {"--binary", wrapper});
    ASSERT_EQ(result.status, 0) << result.err << run.err();
    EXPECT_TRUE(std::filesystem::exists(dir.path() + "/seen"));
    ASSERT_TRUE(wait_until([&] {
        status = status_of("window");
        return all_ready(status, 2) && worker_pids(status).at(1) != victim;
    })) << run.err();
    EXPECT_EQ(status["slots"][1]["restarts_total"], 1);
    EXPECT_EQ(status["slots"][1]["last_exit"]["text"], "SIGKILL");
    EXPECT_FALSE(is_alive(victim));
    EXPECT_EQ(zombie_children(run.pid()), 0);
    EXPECT_EQ(lines_with(run.err(), "was killed by SIGKILL").size(), 1u) << run.err();
}

TEST(Upgrade, ReuseportSocketsMetricsAndTheControlSocketAreTakenOver) {
    const int metrics = free_tcp_port();
    Process run(preforkctl({"--name", "rp", "-n", "2", "--socket-mode", "reuseport", "-l", "127.0.0.1:0",
                            "--metrics", "127.0.0.1:" + std::to_string(metrics), "--", HELLO_SERVER_BIN}));
    json status;
    ASSERT_TRUE(wait_until([&] { return all_ready(status = status_of("rp"), 2); })) << run.err();
    const auto workers = worker_pids(status);
    const int port = listening_port(run.err());
    const CtlResult result = upgrade("rp");
    ASSERT_EQ(result.status, 0) << result.err << run.err();
    status = status_of("rp");
    EXPECT_EQ(worker_pids(status), workers);
    ASSERT_EQ(status["listeners"].size(), 2u);
    EXPECT_EQ(status["listeners"][0]["slot"], 0);
    EXPECT_EQ(status["listeners"][1]["slot"], 1);
    EXPECT_EQ(status["listeners"][0]["address"], "127.0.0.1:" + std::to_string(port));
    std::set<int> served;
    EXPECT_TRUE(wait_until([&] {
        served.insert(pid_in_body(http_get(port)));
        return served.count(workers.at(0)) == 1 && served.count(workers.at(1)) == 1;
    }));
    EXPECT_THAT(http_get(metrics, "/metrics"), HasSubstr("preforkctl_upgrades_total 1"));
}

TEST(Upgrade, WhileTheCheckRunsTheLoopGoesOnAndASecondUpgradeIsRefused) {
    TempDir dir;
    Process run(preforkctl({"--name", "slowcheck", "-n", "1", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return all_ready(status_of("slowcheck"), 1); })) << run.err();
    // A new binary whose check takes a second (it then passes the check on to the real one).
    const std::string slow = dir.path() + "/preforkctl-slow";
    write_script(slow, "#!/bin/sh\ncase \"$1\" in --upgrade-check=*) touch " + dir.path() +
                           "/checking; sleep 1;; esac\nexec " PREFORKCTL_BIN " \"$@\"\n");
    CtlResult first;
    std::thread upgrader([&] { first = upgrade("slowcheck", {"--binary", slow}); });
    ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(dir.path() + "/checking"); }));
    // The event loop answers meanwhile, and serves; a second upgrade is refused.
    const json status = status_of("slowcheck");
    EXPECT_TRUE(status.is_object());
    EXPECT_EQ(status["upgrades"], 0);
    EXPECT_GT(pid_in_body(http_get(listening_port(run.err()))), 0);
    const CtlResult second = upgrade("slowcheck");
    EXPECT_EQ(second.status, 1);
    EXPECT_THAT(second.err, HasSubstr("an upgrade to " + slow + " is under way"));
    upgrader.join();
    EXPECT_EQ(first.status, 0) << first.err << run.err();
    EXPECT_THAT(first.out, HasSubstr("upgraded in place"));
    EXPECT_EQ(status_of("slowcheck")["upgrades"], 1);
    EXPECT_EQ(zombie_children(run.pid()), 0);
}

namespace {

// A TCP socket listening on 127.0.0.1 at an ephemeral port, as a socket unit would pass it.
int listening_socket(int& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd, 64);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
    return fd;
}

}  // namespace

TEST(Upgrade, ASocketFromSystemdIsTakenOverWithItsName) {
    int port = 0;
    const int passed = listening_socket(port);
    Options options{{"LISTEN_FDS=1", "LISTEN_FDNAMES=web"}};
    options.pass_fds = {passed};
    options.prefix = {"sh", "-c", "export LISTEN_PID=$$; exec \"$@\"", "sh"};
    Process run(preforkctl({"--name", "activated", "-n", "2", "--", HELLO_SERVER_BIN}), options);
    ::close(passed);
    json status;
    ASSERT_TRUE(wait_until([&] { return all_ready(status = status_of("activated"), 2); })) << run.err();
    const auto workers = worker_pids(status);
    const CtlResult result = upgrade("activated");
    ASSERT_EQ(result.status, 0) << result.err << run.err();
    status = status_of("activated");
    EXPECT_EQ(worker_pids(status), workers);
    ASSERT_EQ(status["listeners"].size(), 1u);
    EXPECT_EQ(status["listeners"][0]["name"], "web");
    EXPECT_EQ(status["listeners"][0]["address"], "127.0.0.1:" + std::to_string(port));
    const int served = pid_in_body(http_get(port));
    EXPECT_TRUE(served == workers.at(0) || served == workers.at(1)) << served;
    // A worker started by the new image gets the same socket as fd 3, and LISTEN_FDNAMES=web.
    ::kill(workers.at(0), SIGKILL);
    ASSERT_TRUE(wait_until([&] {
        status = status_of("activated");
        return all_ready(status, 2) && worker_pids(status).at(0) != workers.at(0);
    })) << run.err();
    const int replacement = worker_pids(status).at(0);
    EXPECT_EQ(environment_of(replacement, "LISTEN_FDNAMES"), "web");
    EXPECT_EQ(fd_target(replacement, 3), fd_target(workers.at(1), 3));
}

TEST(Upgrade, AConfigFileWhoseListenersChangedIsRefusedUntilAReloadAppliedIt) {
    TempDir dir;
    const std::string path = dir.path() + "/preforkctl.toml";
    const auto config = [&](const std::string& listen) {
        std::ofstream(path, std::ios::trunc) << "name = \"configured\"\nworkers = 2\nlisten = [" + listen +
                                                    "]\ncommand = [\"" HELLO_SERVER_BIN "\"]\n";
    };
    config("\"127.0.0.1:0,name=api\"");
    Process run(preforkctl({"-c", path}));
    json status;
    ASSERT_TRUE(wait_until([&] { return all_ready(status = status_of("configured"), 2); })) << run.err();
    const std::string address = status["listeners"][0]["address"];
    // The same file: taken over, port 0 keeps the port it has.
    CtlResult result = upgrade("configured");
    ASSERT_EQ(result.status, 0) << result.err << run.err();
    EXPECT_EQ(status_of("configured")["listeners"][0]["address"], address);
    // A file that drops the listener cannot be taken over by an upgrade: nothing changes.
    const int other = free_tcp_port();
    config("\"127.0.0.1:" + std::to_string(other) + ",name=web\"");
    result = upgrade("configured");
    EXPECT_EQ(result.status, 1);
    EXPECT_THAT(result.err, HasSubstr("ctl reload first, then upgrade"));
    EXPECT_EQ(status_of("configured")["upgrades"], 1);
    // After the reload has applied it, the upgrade goes through.
    ASSERT_EQ(ctl({"--name", "configured", "reload"}).status, 0) << run.err();
    result = upgrade("configured");
    EXPECT_EQ(result.status, 0) << result.err << run.err();
    status = status_of("configured");
    ASSERT_EQ(status["listeners"].size(), 1u);
    EXPECT_EQ(status["listeners"][0]["name"], "web");
    EXPECT_EQ(status["upgrades"], 2);
    EXPECT_GT(pid_in_body(http_get(other)), 0);
}
