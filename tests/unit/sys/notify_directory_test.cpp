// NotifyDirectory on a real directory: what preparing it clears, what it leaves, and the files' lifetimes.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "sys/notify.hpp"

namespace preforkctl::sys {
namespace {

// A datagram socket bound at `path`; the file stays when the socket is closed, as a killed process leaves it.
Fd bound_at(const std::string& path) {
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0) << path;
    return fd;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Preparing an existing directory empties it of sockets nobody is bound to (a dead process with this pid left them)
// but leaves a live one (another preforkctl with this pid, in another PID namespace), and skips its name.
TEST(NotifyDirectory, AFreshStartRemovesStaleSocketsKeepsLiveOnesAndRemovesItsOwnAtTheEnd) {
    char base[] = "/tmp/notify-directory-test.XXXXXX";
    ASSERT_NE(::mkdtemp(base), nullptr);
    const std::string directory = std::string(base) + "/preforkctl-notify.1";
    ASSERT_EQ(::mkdir(directory.c_str(), 0711), 0);
    { Fd stale = bound_at(directory + "/0"); }
    Fd live = bound_at(directory + "/1");
    std::string first_path;
    {
        NotifyDirectory notify;
        auto first = notify.bind(directory);
        ASSERT_TRUE(first) << first.error().message;
        EXPECT_EQ(first->fallback, "");
        first_path = first->address;
        EXPECT_EQ(first_path, directory + "/0") << "the stale name is free again";
        EXPECT_TRUE(exists(directory + "/1")) << "a live socket was removed";
        auto second = notify.bind(directory);
        ASSERT_TRUE(second);
        EXPECT_EQ(second->address, directory + "/2") << "the live socket's name is skipped";
        struct stat info {};
        ASSERT_EQ(::stat(second->address.c_str(), &info), 0);
        EXPECT_EQ(info.st_mode & 0777, 0666u);
        {
            SocketFile taken = std::move(second->file);
            second->file = SocketFile();  // the moved-from one had nothing left to remove
            EXPECT_TRUE(exists(second->address));
        }
        EXPECT_FALSE(exists(second->address)) << "its new owner removes it";
    }
    EXPECT_FALSE(exists(first_path)) << "each socket file goes with its owner";
    EXPECT_TRUE(exists(directory)) << "not empty (the live socket): the directory stays";
    live = Fd();
    std::filesystem::remove_all(base);
}

// A directory that cannot be used gives abstract sockets, with the reason once.
TEST(NotifyDirectory, AnUnusableDirectoryGivesAbstractSocketsAndSaysWhyOnce) {
    NotifyDirectory notify;
    auto first = notify.bind("/proc/preforkctl-notify.1");
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->address.rfind("@preforkctl/", 0), 0u) << first->address;
    EXPECT_NE(first->fallback.find("cannot use /proc/preforkctl-notify.1"), std::string::npos) << first->fallback;
    auto second = notify.bind("/proc/preforkctl-notify.1");
    ASSERT_TRUE(second);
    EXPECT_EQ(second->address.rfind("@preforkctl/", 0), 0u);
    EXPECT_EQ(second->fallback, "");
}

}  // namespace
}  // namespace preforkctl::sys
