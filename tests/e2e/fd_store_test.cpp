// --fd-store (SPEC §14): preforkctl hands its listening sockets to systemd's fd store, and after a restart
// takes them back by name, so connections made while it was away wait instead of being refused. systemd is
// played by a datagram socket that keeps what FDSTORE=1 sends, and passes it back as systemd does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

namespace {

// systemd's side of NOTIFY_SOCKET for a unit with FileDescriptorStoreMax=: FDSTORE=1 keeps the descriptors
// that come with the message under its FDNAME, FDSTOREREMOVE=1 closes those of a name.
class FdStore {
public:
    explicit FdStore(std::string path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    ~FdStore() {
        for (auto& [name, fds] : stored_) {
            for (int fd : fds) ::close(fd);
        }
        ::close(fd_);
    }
    FdStore(const FdStore&) = delete;
    FdStore& operator=(const FdStore&) = delete;

    [[nodiscard]] const std::string& path() const { return path_; }

    // Reads every waiting message; returns the descriptors stored under `name`.
    std::vector<int> stored(const std::string& name) {
        receive();
        return stored_.count(name) != 0 ? stored_[name] : std::vector<int>{};
    }
    std::vector<std::string> removals() {
        receive();
        return removals_;
    }

private:
    void receive() {
        char buffer[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(16 * sizeof(int))];
        for (;;) {
            iovec data{buffer, sizeof buffer};
            msghdr header{};
            header.msg_iov = &data;
            header.msg_iovlen = 1;
            header.msg_control = control;
            header.msg_controllen = sizeof control;
            const ssize_t n = ::recvmsg(fd_, &header, MSG_CMSG_CLOEXEC);
            if (n < 0) return;
            std::vector<int> fds;
            for (cmsghdr* part = CMSG_FIRSTHDR(&header); part != nullptr; part = CMSG_NXTHDR(&header, part)) {
                if (part->cmsg_level != SOL_SOCKET || part->cmsg_type != SCM_RIGHTS) continue;
                const std::size_t count = (part->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < count; ++i) {
                    int fd = -1;
                    std::memcpy(&fd, CMSG_DATA(part) + i * sizeof(int), sizeof fd);
                    fds.push_back(fd);
                }
            }
            const std::string text(buffer, static_cast<std::size_t>(n));
            const std::string name = value_of(text, "FDNAME");
            if (has_line(text, "FDSTORE=1")) {
                for (int fd : fds) stored_[name].push_back(fd);
            } else {
                for (int fd : fds) ::close(fd);
            }
            if (has_line(text, "FDSTOREREMOVE=1")) {
                removals_.push_back(name);
                for (int fd : stored_[name]) ::close(fd);
                stored_.erase(name);
            }
        }
    }
    static bool has_line(const std::string& text, const std::string& line) {
        return ("\n" + text + "\n").find("\n" + line + "\n") != std::string::npos;
    }
    static std::string value_of(const std::string& text, const std::string& name) {
        const std::size_t at = ("\n" + text).find("\n" + name + "=");
        if (at == std::string::npos) return "";
        const std::size_t start = at + name.size() + 1;
        return text.substr(start, text.find('\n', start) - start);
    }

    std::string path_;
    int fd_ = -1;
    std::map<std::string, std::vector<int>> stored_;
    std::vector<std::string> removals_;
};

ino_t inode_of(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

// True when one of `pid`'s descriptors is the socket `fd` is.
bool holds_socket(pid_t pid, int fd) {
    const std::string target = "socket:[" + std::to_string(inode_of(fd)) + "]";
    for (int candidate = 0; candidate < 256; ++candidate) {
        if (fd_target(pid, candidate) == target) return true;
    }
    return false;
}

// As systemd starts the service again: the stored sockets at 3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES and
// LISTEN_PID (the shell's pid, which exec keeps for preforkctl).
Options passing(const FdStore& store, const std::vector<int>& fds, const std::string& names) {
    Options options{{"NOTIFY_SOCKET=" + store.path(), "LISTEN_FDS=" + std::to_string(fds.size()),
                     "LISTEN_FDNAMES=" + names}};
    options.pass_fds = fds;
    options.prefix = {"sh", "-c", "export LISTEN_PID=$$; exec \"$@\"", "sh"};
    return options;
}

// A first preforkctl with --fd-store on 127.0.0.1:0,name=NAME, stopped once the store holds its socket.
// Returns the port it listened on (0 when something failed, which the ASSERTs say).
int store_and_stop(FdStore& store, const std::string& name) {
    Process first(preforkctl({"-n", "1", "--fd-store", "-l", "127.0.0.1:0,name=" + name, "--", HELLO_SERVER_BIN}),
                  {{"NOTIFY_SOCKET=" + store.path()}});
    int port = 0;
    EXPECT_TRUE(wait_until([&] { return store.stored(name).size() == 1; })) << first.err();
    EXPECT_TRUE(wait_until([&] { return (port = listening_port(first.err())) != 0; })) << first.err();
    first.signal(SIGTERM);
    EXPECT_EQ(first.wait(), 0) << first.err();
    return port;
}

}  // namespace

TEST(FdStore, EachListenerIsStoredWithItsName) {
    TempDir dir;
    FdStore store(dir.path() + "/notify");
    Process run(preforkctl({"-n", "1", "--fd-store", "-l", "127.0.0.1:0,name=web", "-l", "unix:" + dir.path() + "/s",
                            "--", HELLO_SERVER_BIN}),
                {{"NOTIFY_SOCKET=" + store.path()}});
    ASSERT_TRUE(wait_until([&] { return store.stored("web").size() == 1 && store.stored("unknown").size() == 1; }))
        << run.err();
    const int web = store.stored("web").front();
    EXPECT_TRUE(holds_socket(run.pid(), web)) << "the stored socket is the one preforkctl listens on";
    EXPECT_TRUE(holds_socket(run.pid(), store.stored("unknown").front()));
    EXPECT_TRUE(wait_until([&] {
        return !lines_with(run.err(), "systemd keeps the listening sockets across restarts (fd store: web, unknown)")
                    .empty();
    })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(FdStore, ARestartTakesTheSocketBackAndAConnectionMadeMeanwhileIsServed) {
    TempDir dir;
    FdStore store(dir.path() + "/notify");
    const int port = store_and_stop(store, "web");
    ASSERT_NE(port, 0);
    // preforkctl is gone; the socket lives on in the store, so this connection waits in its queue.
    auto reply = std::async(std::launch::async, [port] { return http_request(port, "/", 15s); });
    ASSERT_EQ(reply.wait_for(300ms), std::future_status::timeout) << "answered with nobody serving";

    Process second(preforkctl({"-n", "1", "--fd-store", "-l", "127.0.0.1:0,name=web", "--", HELLO_SERVER_BIN}),
                   passing(store, store.stored("web"), "web"));
    const HttpReply answer = reply.get();
    EXPECT_EQ(answer.status, 200) << answer.failure << second.err();
    EXPECT_THAT(second.err(), HasSubstr("listening on 127.0.0.1:" + std::to_string(port)));
    EXPECT_THAT(second.err(), HasSubstr("taken back from systemd's fd store"));
    EXPECT_TRUE(store.removals().empty());
    second.signal(SIGTERM);
    EXPECT_EQ(second.wait(), 0) << second.err();
}

TEST(FdStore, AStoredSocketTheNewConfigurationDropsIsClosedAndForgotten) {
    TempDir dir;
    FdStore store(dir.path() + "/notify");
    ASSERT_NE(store_and_stop(store, "old"), 0);

    Process second(preforkctl({"-n", "1", "--fd-store", "-l", "127.0.0.1:0,name=new", "--", HELLO_SERVER_BIN}),
                   passing(store, store.stored("old"), "old"));
    ASSERT_TRUE(wait_until([&] { return store.stored("new").size() == 1; })) << second.err();
    EXPECT_EQ(store.removals(), std::vector<std::string>{"old"});
    EXPECT_TRUE(wait_until([&] { return !lines_with(second.err(), "that systemd kept for an earlier configuration").empty(); }))
        << second.err();
    second.signal(SIGTERM);
    EXPECT_EQ(second.wait(), 0) << second.err();
}

TEST(FdStore, WithoutTheStorePassedSocketsBesideListenAreOneErrorLine) {
    TempDir dir;
    FdStore store(dir.path() + "/notify");
    ASSERT_NE(store_and_stop(store, "web"), 0);

    Process second(preforkctl({"-n", "1", "-l", "127.0.0.1:0,name=api", "--", HELLO_SERVER_BIN}),
                   passing(store, store.stored("web"), "web"));
    EXPECT_EQ(second.wait(), 2) << second.err();
    EXPECT_THAT(second.err(), HasSubstr("preforkctl: error: --listen: preforkctl was given 1 socket(s) by systemd"));
    EXPECT_EQ(lines_with(second.err(), "error").size(), 1u) << second.err();
}
