// --ready notify (SPEC §7, §12): a worker's NOTIFY_SOCKET is a socket file of its own, as systemd's is, that
// other processes can reach too; only the worker's own process tree may report it ready.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "harness.hpp"

using namespace e2e;

namespace {

// The NOTIFY_SOCKET of each "worker pid=P ... notify=ADDR" line of notify_worker, in order.
std::vector<std::pair<pid_t, std::string>> started(const std::string& out) {
    static const std::regex pattern(R"(worker pid=(\d+) .* notify=(\S*))");
    std::vector<std::pair<pid_t, std::string>> found;
    for (const std::string& line : lines_with(out, "| worker pid=")) {
        std::smatch m;
        if (std::regex_search(line, m, pattern)) found.emplace_back(std::stoi(m[1]), m[2]);
    }
    return found;
}

bool send_datagram(const std::string& address, const std::string& text) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address.data(), std::min(address.size(), sizeof addr.sun_path - 1));
    if (address.front() == '@') addr.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() +
                                               (address.front() == '@' ? 0 : 1));
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const bool sent = ::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&addr), length) ==
                      static_cast<ssize_t>(text.size());
    ::close(fd);
    return sent;
}

// preforkctl's own NOTIFY_SOCKET, as systemd gives it to a Type=notify service: counts its READY=1 lines.
class FakeSystemd {
public:
    explicit FakeSystemd(std::string path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    ~FakeSystemd() { ::close(fd_); }
    FakeSystemd(const FakeSystemd&) = delete;
    FakeSystemd& operator=(const FakeSystemd&) = delete;

    int ready_count() {
        char buffer[4096];
        for (ssize_t n; (n = ::recv(fd_, buffer, sizeof buffer, 0)) > 0;) {
            const std::string message(buffer, static_cast<std::size_t>(n));
            ready_ += (message.starts_with("READY=1") || message.find("\nREADY=1") != std::string::npos) ? 1 : 0;
        }
        return ready_;
    }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
    int ready_ = 0;
};

}  // namespace

TEST(Notify, ReadyFromAProcessOutsideTheWorkersTreeDoesNotMakeItReady) {
    TempDir dir;
    FakeSystemd systemd(dir.path() + "/notify");
    const std::string flag = dir.path() + "/ready";
    Process run(preforkctl({"-n", "1", "--ready", "notify", "--", NOTIFY_WORKER_BIN, "--ready-when", flag}),
                {{"NOTIFY_SOCKET=" + systemd.path()}});
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 1; })) << run.err();
    const auto [worker, address] = started(run.out())[0];

    // This test process is no part of the worker's tree, yet it can reach the worker's socket.
    ASSERT_TRUE(send_datagram(address, "READY=1"));
    const std::string rejected = "slot 0: ignored a notification from pid " + std::to_string(::getpid());
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), rejected).empty(); })) << run.err();
    // The message has been dealt with (rejected): had it counted, systemd would have been told by now.
    EXPECT_EQ(systemd.ready_count(), 0) << "a stranger's READY=1 made the worker ready";

    std::ofstream(flag).put('1');
    ASSERT_TRUE(wait_until([&] { return systemd.ready_count() == 1; })) << run.out() << run.err();
    EXPECT_EQ(lines_with(run.err(), "ignored a notification").size(), 1u) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// As a shell script's `systemd-notify --ready` does (when not run as root): a child of the worker sends
// READY=1, then waits until its BARRIER=1 has been read.
TEST(Notify, ReadyFromAChildOfTheWorkerCounts) {
    TempDir dir;
    FakeSystemd systemd(dir.path() + "/notify");
    Process run(preforkctl({"-n", "1", "--ready", "notify", "--", NOTIFY_WORKER_BIN, "--ready-from-child", "barrier"}),
                {{"NOTIFY_SOCKET=" + systemd.path()}});
    ASSERT_TRUE(wait_until([&] { return systemd.ready_count() == 1; })) << run.out() << run.err();
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.out(), "sent READY=1 and was reaped").empty(); }))
        << "the child's barrier was answered: " << run.out();
    EXPECT_TRUE(lines_with(run.err(), "ignored a notification").empty()) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// A child that sent READY=1 and was reaped before preforkctl read it can no longer be placed in the tree;
// it counts because it ran as the worker's user (the documented fallback). preforkctl is stopped meanwhile,
// so that it reads the message only after the reap.
TEST(Notify, ReadyFromAChildReapedBeforeItWasReadCountsForTheWorkersUser) {
    TempDir dir;
    FakeSystemd systemd(dir.path() + "/notify");
    const std::string flag = dir.path() + "/ready";
    Process run(preforkctl({"-n", "1", "--ready", "notify", "--", NOTIFY_WORKER_BIN, "--ready-when", flag,
                            "--ready-from-child", "exit"}),
                {{"NOTIFY_SOCKET=" + systemd.path()}});
    ASSERT_TRUE(wait_until([&] { return started(run.out()).size() == 1; })) << run.err();
    run.signal(SIGSTOP);
    ASSERT_TRUE(wait_until([&] { return is_stopped(run.pid()); }));
    std::ofstream(flag).put('1');
    const bool sent = wait_until([&] { return ::access((flag + ".sent").c_str(), F_OK) == 0; });
    run.signal(SIGCONT);
    ASSERT_TRUE(sent) << "the worker's child never sent READY=1";
    ASSERT_TRUE(wait_until([&] { return systemd.ready_count() == 1; })) << run.out() << run.err();
    EXPECT_TRUE(lines_with(run.err(), "ignored a notification").empty()) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// The real tool from a shell worker: its READY=1 counts, and its barrier is answered, so it returns at once
// with success instead of timing out.
TEST(Notify, SystemdNotifyFromAShellWorkerCounts) {
    if (::access("/usr/bin/systemd-notify", X_OK) != 0) GTEST_SKIP() << "systemd-notify is not installed";
    TempDir dir;
    FakeSystemd systemd(dir.path() + "/notify");
    Process run(preforkctl({"-n", "1", "--ready", "notify", "--", "/bin/sh", "-c",
                            "systemd-notify --ready && echo notified; exec sleep 60"}),
                {{"NOTIFY_SOCKET=" + systemd.path()}});
    ASSERT_TRUE(wait_until([&] { return systemd.ready_count() == 1; })) << run.out() << run.err();
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.out(), "| notified").empty(); })) << run.out() << run.err();
    EXPECT_TRUE(lines_with(run.err(), "ignored a notification").empty()) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// A client that takes NOTIFY_SOCKET for a path, as Ruby's sd_notify gem (puma's) and a plain Python connect()
// do, is heard: the worker's socket is a file, in a directory of this preforkctl's that workers of another
// user can enter (they run as nobody here). A replaced worker's file goes with its socket, and the directory
// goes when preforkctl does.
TEST(Notify, AClientThatTakesNotifySocketForAPathIsHeardAndTheFilesGoWithTheirWorkers) {
    if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 is not installed";
    TempDir dir;
    FakeSystemd systemd(dir.path() + "/notify");
    const std::string client =
        "import os, socket, time\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "s.connect(os.environ['NOTIFY_SOCKET'])\n"
        "s.send(b'READY=1')\n"
        "print('notified', os.getpid(), os.environ['NOTIFY_SOCKET'], flush=True)\n"
        "time.sleep(60)\n";
    Process run(preforkctl({"-n", "2", "--user", "nobody", "--ready", "notify", "--ready-timeout", "20s", "--",
                            "/usr/bin/python3", "-c", client}),
                {{"NOTIFY_SOCKET=" + systemd.path()}});
    ASSERT_TRUE(wait_until([&] { return systemd.ready_count() == 1; }, 20s)) << run.out() << run.err();
    const std::string directory = "/run/preforkctl-notify." + std::to_string(run.pid());
    auto notified = [&] {
        std::vector<std::pair<pid_t, std::string>> found;
        for (const std::string& line : lines_with(run.out(), "| notified ")) {
            std::istringstream words(line.substr(line.find("| notified ") + 11));
            pid_t pid = 0;
            std::string address;
            words >> pid >> address;
            found.emplace_back(pid, address);
        }
        return found;
    };
    const auto first = notified();
    ASSERT_EQ(first.size(), 2u) << run.out();
    struct stat info {};
    ASSERT_EQ(::stat(directory.c_str(), &info), 0) << directory;
    EXPECT_EQ(info.st_mode & 07777, 0711u);
    for (const auto& [pid, address] : first) {
        EXPECT_EQ(address.rfind(directory + "/", 0), 0u) << address;
        ASSERT_EQ(::stat(address.c_str(), &info), 0) << address;
        EXPECT_TRUE(S_ISSOCK(info.st_mode)) << address;
    }
    EXPECT_TRUE(lines_with(run.err(), "ignored a notification").empty()) << run.err();

    ::kill(first[0].first, SIGKILL);
    ASSERT_TRUE(wait_until([&] { return notified().size() == 3; }, 20s)) << run.out() << run.err();
    const std::string replacement = notified()[2].second;
    EXPECT_NE(replacement, first[0].second);
    EXPECT_TRUE(wait_until([&] { return ::access(first[0].second.c_str(), F_OK) != 0; }))
        << "the dead worker's socket file is still there";
    EXPECT_EQ(::access(replacement.c_str(), F_OK), 0);
    EXPECT_EQ(::access(first[1].second.c_str(), F_OK), 0);

    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_NE(::access(directory.c_str(), F_OK), 0) << directory << " is left behind";
}

// Where the directory cannot be made (here: in the tests' $XDG_RUNTIME_DIR, root's, for a preforkctl that runs
// as nobody), the workers' sockets are abstract as before, readiness still works, and preforkctl says why once.
TEST(Notify, WithoutAUsableDirectoryTheSocketsAreAbstractAndPreforkctlSaysSoOnce) {
    if (::geteuid() != 0) GTEST_SKIP() << "setpriv --reuid needs root";
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    const std::string own = dir.path() + "/nobody";  // the control socket's directory: nobody's, 0700
    ASSERT_EQ(::mkdir(own.c_str(), 0700), 0);
    ASSERT_EQ(::chown(own.c_str(), 65534, 65534), 0);
    const std::string control = own + "/ctl.sock";
    Options options;
    options.prefix = {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
    Process run(preforkctl({"--control", control, "-n", "2", "--ready", "notify", "--", NOTIFY_WORKER_BIN}),
                options);
    ASSERT_TRUE(wait_until([&] {
        return ctl({"--socket", control, "status"}).out.find("(2 ready)") != std::string::npos;
    })) << ctl({"--socket", control, "status"}).out << run.err();
    const auto workers = started(run.out());
    ASSERT_EQ(workers.size(), 2u) << run.out();
    for (const auto& [pid, address] : workers) EXPECT_EQ(address.rfind("@preforkctl/", 0), 0u) << address;
    const std::string directory = std::string(std::getenv("XDG_RUNTIME_DIR")) + "/preforkctl-notify.";
    EXPECT_EQ(lines_with(run.err(), "cannot use " + directory).size(), 1u) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}
