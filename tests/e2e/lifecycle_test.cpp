// Rolling restarts (SIGHUP), readiness (--ready), scaling (SIGTTIN/SIGTTOU), job control (SIGTSTP/SIGCONT)
// and the systemd notification protocol (SPEC §7).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

namespace {

// One "worker pid=P slot=S gen=G workers=W notify=ADDR" line of notify_worker.
struct Started {
    pid_t pid = 0;
    std::string slot, generation, workers, notify;
};

std::vector<Started> started(const std::string& out) {
    static const std::regex pattern(R"(worker pid=(\d+) slot=(\S*) gen=(\S*) workers=(\S*) notify=(\S*))");
    std::vector<Started> found;
    for (const std::string& line : lines_with(out, "| worker pid=")) {
        std::smatch m;
        if (std::regex_search(line, m, pattern)) {
            found.push_back({std::stoi(m[1]), m[2], m[3], m[4], m[5]});
        }
    }
    return found;
}

bool said_ready(const std::string& out, pid_t pid) {
    return !lines_with(out, "| ready pid=" + std::to_string(pid)).empty();
}

// A datagram socket standing in for systemd's NOTIFY_SOCKET.
class FakeSystemd {
public:
    explicit FakeSystemd(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    ~FakeSystemd() { ::close(fd_); }
    FakeSystemd(const FakeSystemd&) = delete;
    FakeSystemd& operator=(const FakeSystemd&) = delete;

    /// Every message received so far, in order.
    const std::vector<std::string>& messages() {
        char buffer[4096];
        for (ssize_t n; (n = ::recv(fd_, buffer, sizeof buffer, 0)) > 0;) {
            messages_.emplace_back(buffer, static_cast<std::size_t>(n));
        }
        return messages_;
    }
    /// Messages that have the line `line`.
    int count(const std::string& line) {
        int n = 0;
        for (const std::string& message : messages()) {
            std::istringstream lines(message);
            for (std::string l; std::getline(lines, l);) n += l == line ? 1 : 0;
        }
        return n;
    }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
    std::vector<std::string> messages_;
};


}  // namespace

TEST(RollingRestart, HupReplacesEveryWorkerWithoutOneFailedRequest) {
    Process run(preforkctl({"-n", "2", "-l", "127.0.0.1:0", "--ready", "delay:200ms", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 2; })) << run.err();
    const int port = listening_port(run.err());
    std::atomic<bool> done{false};
    std::atomic<int> ok{0}, failed{0};
    std::thread client([&] {
        while (!done) (http_get(port).rfind("pid=", 0) == 0 ? ok : failed)++;
    });
    ASSERT_TRUE(wait_until([&] { return ok > 20; }));
    run.signal(SIGHUP);
    const bool finished = wait_until([&] { return !lines_with(run.err(), "rolling restart done").empty(); });
    const int during = ok;
    const bool served_after = wait_until([&] { return ok > during + 20; });
    done = true;
    client.join();
    ASSERT_TRUE(finished) << run.err();
    EXPECT_TRUE(served_after) << "the new workers answered " << ok - during << " requests after the restart";
    EXPECT_EQ(failed, 0) << "requests refused or reset during the rolling restart (" << ok << " answered)";
    EXPECT_EQ(lines_with(run.out(), "serving").size(), 4u) << "two new workers: " << run.out();
    EXPECT_EQ(lines_with(run.out(), "stopping").size(), 2u) << "two old workers stopped: " << run.out();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0);
}

TEST(RollingRestart, TheOldWorkerServesUntilItsReplacementReportsReady) {
    TempDir dir;
    const std::string flag = dir.path() + "/ready";
    std::ofstream(flag).put('1');
    Process run(preforkctl({"-n", "1", "--ready", "notify", "--", NOTIFY_WORKER_BIN, "--ready-when", flag}));
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 1; })) << run.err();
    const Started old = started(run.out())[0];
    ASSERT_TRUE(wait_until([&] { return said_ready(run.out(), old.pid); }));
    EXPECT_EQ(old.generation, "0");
    std::filesystem::remove(flag);
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 2; })) << run.err();
    const Started next = started(run.out())[1];
    EXPECT_EQ(next.generation, "1");
    EXPECT_NE(next.notify, old.notify) << "each worker has its own NOTIFY_SOCKET";
    // The new worker cannot be ready before the flag exists: until then the old one must still be there and
    // must not have been told to stop. (The old and the new worker write to pipes of their own, so the order of
    // their lines in preforkctl's output proves nothing; preforkctl's own log does.)
    EXPECT_TRUE(is_alive(old.pid)) << "old worker stopped before the new was ready";
    EXPECT_TRUE(lines_with(run.out(), "bye pid=" + std::to_string(old.pid)).empty()) << run.out();
    EXPECT_TRUE(lines_with(run.err(), "stopping worker " + std::to_string(old.pid)).empty()) << run.err();
    std::ofstream(flag).put('1');
    ASSERT_TRUE(wait_until([&] { return !is_alive(old.pid); })) << run.err();
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.out(), "bye pid=" + std::to_string(old.pid)).empty(); }))
        << "the old worker was stopped gracefully: " << run.out();
    EXPECT_EQ(lines_with(run.err(), "rolling restart: new worker " + std::to_string(next.pid) +
                                        " is ready; stopping worker " + std::to_string(old.pid))
                  .size(),
              1u)
        << run.err();
    EXPECT_TRUE(is_alive(next.pid));
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(RollingRestart, AReplacementThatNeverGetsReadyIsKilledAndTheOldWorkerStays) {
    TempDir dir;
    const std::string flag = dir.path() + "/ready";
    std::ofstream(flag).put('1');
    Process run(preforkctl({"-n", "1", "--ready", "notify", "--ready-timeout", "300ms", "--", NOTIFY_WORKER_BIN,
                            "--ready-when", flag}));
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 1; })) << run.err();
    const Started old = started(run.out())[0];
    ASSERT_TRUE(wait_until([&] { return said_ready(run.out(), old.pid); }));
    std::filesystem::remove(flag);
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "keeping worker " + std::to_string(old.pid)).empty(); }))
        << run.err();
    const Started next = started(run.out()).at(1);
    EXPECT_TRUE(wait_until([&] { return !is_alive(next.pid); }));
    EXPECT_TRUE(is_alive(old.pid));
    EXPECT_THAT(run.err(), HasSubstr("did not report READY=1 in time"));
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Systemd, ReadyIsSentOnceEveryWorkerIsReadyAndReloadAndStopAreAnnounced) {
    TempDir dir;
    FakeSystemd systemd(dir.path() + "/notify");
    const std::string flag = dir.path() + "/ready";
    Process run(preforkctl({"-n", "2", "--ready", "notify", "--", NOTIFY_WORKER_BIN, "--ready-when", flag}),
                {{"NOTIFY_SOCKET=" + systemd.path()}});
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 2; })) << run.err();
    for (const Started& worker : started(run.out())) {
        EXPECT_NE(worker.notify, systemd.path()) << "systemd's socket must not leak";
        EXPECT_THAT(worker.notify, ::testing::HasSubstr("/preforkctl-notify." + std::to_string(run.pid()) + "/"))
            << "a socket file of preforkctl's own";
    }
    // Both workers' first lines have been relayed, so a READY=1 sent at the start would have arrived by now.
    EXPECT_EQ(systemd.count("READY=1"), 0) << "READY=1 before the workers";
    std::ofstream(flag).put('1');
    ASSERT_TRUE(wait_until([&] { return systemd.count("READY=1") == 1; })) << run.err();
    for (const Started& worker : started(run.out())) {
        EXPECT_TRUE(wait_until([&] { return said_ready(run.out(), worker.pid); })) << run.out();
    }
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return systemd.count("RELOADING=1") == 1 && systemd.count("READY=1") == 2; }))
        << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(systemd.count("STOPPING=1"), 1);
}

TEST(Scaling, TtinAddsASlotAndTtouRemovesTheHighestButNeverTheLast) {
    Process run(preforkctl({"-n", "1", "--", NOTIFY_WORKER_BIN}));
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 1; })) << run.err();
    run.signal(SIGTTIN);
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 2; })) << run.err();
    const Started added = started(run.out())[1];
    EXPECT_EQ(added.slot, "1");
    EXPECT_EQ(added.workers, "2");
    run.signal(SIGTTOU);
    ASSERT_TRUE(wait_until([&] { return !is_alive(added.pid); })) << run.err();
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.out(), "bye pid=" + std::to_string(added.pid)).empty(); }))
        << "removed gracefully: " << run.out();
    run.signal(SIGTTOU);
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "one worker is the minimum").empty(); }));
    EXPECT_TRUE(is_alive(started(run.out())[0].pid));
    EXPECT_NE(process_state(run.pid()), 'T') << "SIGTTOU must never stop preforkctl";
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Scaling, AnAddedReuseportSlotGetsASocketOfItsOwnAndRemovingTheSlotClosesIt) {
    Process run(preforkctl({"-n", "1", "--socket-mode", "reuseport", "-l", "127.0.0.1:0", "--", NOTIFY_WORKER_BIN}));
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 1; })) << run.err();
    run.signal(SIGTTIN);
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 2; })) << run.err();
    const auto socket_of = [](pid_t pid) {
        std::error_code error;
        return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/fd/3", error).string();
    };
    const std::string first = socket_of(started(run.out())[0].pid);
    const std::string second = socket_of(started(run.out())[1].pid);
    EXPECT_THAT(first, HasSubstr("socket:"));
    EXPECT_THAT(second, HasSubstr("socket:"));
    EXPECT_NE(first, second);
    // preforkctl holds each slot's socket; removing the slot closes it.
    const auto preforkctl_holds = [&](const std::string& socket) {
        for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(run.pid()) + "/fd")) {
            std::error_code error;
            if (std::filesystem::read_symlink(fd.path(), error).string() == socket) return true;
        }
        return false;
    };
    EXPECT_TRUE(preforkctl_holds(second));
    run.signal(SIGTTOU);
    EXPECT_TRUE(wait_until([&] { return !preforkctl_holds(second); }, 20s)) << run.err() << run.out();
    EXPECT_TRUE(preforkctl_holds(first));
}

TEST(JobControl, TstpStopsTheWorkersAndPreforkctlAndContResumesThem) {
    Process run(preforkctl({"-n", "2", "--", NOTIFY_WORKER_BIN}));
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 2; })) << run.err();
    run.signal(SIGTSTP);
    ASSERT_TRUE(wait_until([&] {
        bool all = process_state(run.pid()) == 'T';
        for (const Started& w : started(run.out())) all = all && process_state(w.pid) == 'T';
        return all;
    })) << run.err();
    run.signal(SIGCONT);
    ASSERT_TRUE(wait_until([&] {
        bool none = process_state(run.pid()) != 'T';
        for (const Started& w : started(run.out())) none = none && process_state(w.pid) != 'T';
        return none;
    })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(lines_with(run.out(), "| bye pid=").size(), 2u);
}
