// Unmodified servers that bind the address themselves, under `-n 2 --preload` (SPEC §13; label:
// integration): busybox httpd, redis-server, memcached and socat, each from Debian (tests/run.sh installs
// them). python3 -m http.server is in the end-to-end suite, which runs where python3 always is.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include "../e2e/harness.hpp"

using namespace e2e;

namespace {

// Sends `request` to 127.0.0.1:`port` and reads until the reply holds `expected`, the peer closes, or 5 s
// pass. True when the reply held `expected`.
bool replies_with(int port, const std::string& request, const std::string& expected) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string reply;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        const auto end = std::chrono::steady_clock::now() + 5s;
        char buffer[4096];
        while (reply.find(expected) == std::string::npos && std::chrono::steady_clock::now() < end) {
            pollfd readable{fd, POLLIN, 0};
            if (::poll(&readable, 1, 100) <= 0) continue;
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) break;
            reply.append(buffer, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return reply.find(expected) != std::string::npos;
}

}  // namespace

TEST(PreloadServers, BusyboxHttpd) {
    if (!on_path("busybox")) GTEST_SKIP() << "busybox is not installed";
    TempDir root;
    std::ofstream(root.path() + "/index.html") << "hello from busybox\n";
    // -f: in the foreground (busybox forks one child per connection).
    Process run(preforkctl({"-n", "2", "--preload", "--backoff", "50ms..1s", "-l", "127.0.0.1:0", "--", "busybox",
                            "httpd", "-f", "-p", "{host}:{port}", "-h", root.path()}));
    expect_preloaded_pair_serves(run, [](int port) {
        const HttpReply reply = http_request(port, "/index.html", 5s);
        return reply.status == 200 && reply.body == "hello from busybox\n";
    });
}

TEST(PreloadServers, RedisServer) {
    if (!on_path("redis-server")) GTEST_SKIP() << "redis-server is not installed";
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--preload", "--backoff", "50ms..1s", "-l", "127.0.0.1:0", "--chdir",
                            dir.path(), "--", "redis-server", "--port", "{port}", "--bind", "{host}", "--save", "",
                            "--appendonly", "no", "--daemonize", "no"}));
    expect_preloaded_pair_serves(run, [](int port) { return replies_with(port, "PING\r\n", "+PONG\r\n"); });
}

TEST(PreloadServers, Memcached) {
    if (!on_path("memcached")) GTEST_SKIP() << "memcached is not installed";
    // memcached refuses to run as root without -u; -U 0: no UDP port.
    Process run(preforkctl({"-n", "2", "--preload", "--backoff", "50ms..1s", "-l", "127.0.0.1:0", "--",
                            "memcached", "-u", "root", "-l", "{host}", "-p", "{port}", "-U", "0"}));
    expect_preloaded_pair_serves(run, [](int port) { return replies_with(port, "version\r\n", "VERSION "); });
}

TEST(PreloadServers, SocatForkingServer) {
    if (!on_path("socat")) GTEST_SKIP() << "socat is not installed";
    // socat shuts its listening socket down on TERM: the library keeps that to the one worker.
    Process run(preforkctl({"-n", "2", "--preload", "--backoff", "50ms..1s", "-l", "127.0.0.1:0", "--", "socat",
                            "TCP-LISTEN:{port},bind={host},fork,reuseaddr", "SYSTEM:echo hello from socat"}));
    // Nothing is sent: socat would pass it on to echo, which has exited, and stop on the broken pipe
    // before it relays echo's line.
    expect_preloaded_pair_serves(run, [](int port) { return replies_with(port, "", "hello from socat\n"); });
}
