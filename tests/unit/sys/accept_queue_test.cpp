#include "sys/accept_queue.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sys/fd.hpp"

using namespace preforkctl::sys;

namespace {

Fd loopback_listener(int backlog, sockaddr_in& address) {
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    address = sockaddr_in{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener.get(), backlog) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return Fd{};
    }
    return listener;
}

}  // namespace

TEST(AcceptQueue, CountsConnectionsWaitingToBeAcceptedAndTheBacklog) {
    sockaddr_in address{};
    const Fd listener = loopback_listener(7, address);
    ASSERT_TRUE(listener.valid());

    const auto empty = read_accept_queue(listener.get());
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->queue, 0u);
    EXPECT_EQ(empty->backlog, 7u);

    std::vector<Fd> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        const int result = ::connect(clients.back().get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
        ASSERT_TRUE(result == 0 || errno == EINPROGRESS) << std::strerror(errno);
    }

    // The handshakes finish in the kernel, not necessarily before connect() returns: poll with a deadline.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::optional<AcceptQueue> seen = read_accept_queue(listener.get());
    while (seen && seen->queue < 3 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        seen = read_accept_queue(listener.get());
    }
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->queue, 3u);
    EXPECT_EQ(seen->backlog, 7u);
}

TEST(AcceptQueue, IsUnknownForAUnixSocket) {
    Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener.valid());
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    // An abstract address: nothing to clean up in the file system.
    const std::string name = "preforkctl-accept-queue-test-" + std::to_string(::getpid());
    std::copy(name.begin(), name.end(), address.sun_path + 1);
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), length), 0);
    ASSERT_EQ(::listen(listener.get(), 7), 0);
    EXPECT_FALSE(read_accept_queue(listener.get()));
}

TEST(AcceptQueue, IsUnknownForATcpSocketThatDoesNotListenAndForANonSocket) {
    const Fd unbound(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(unbound.valid());
    EXPECT_FALSE(read_accept_queue(unbound.get()));

    auto pipe = make_pipe();
    ASSERT_TRUE(pipe);
    EXPECT_FALSE(read_accept_queue(pipe->read_end.get()));
    EXPECT_FALSE(read_accept_queue(-1));
}
