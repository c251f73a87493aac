// The metrics endpoint on a real loopback socket, driven from the test thread: every wait runs the
// io_context in small slices until a condition holds or a deadline passes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/http_server.hpp"

using namespace preforkctl;
using namespace preforkctl::metrics;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

// Runs `io` until `done` holds; false when `deadline` passed first.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds deadline = 5s) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= end) return false;
        io.restart();
        io.run_for(5ms);
    }
    return true;
}

struct Response {
    int status = 0;
    std::string headers;  // the status line and the header lines
    std::string body;

    [[nodiscard]] std::string header(const std::string& name) const {
        const std::string key = "\r\n" + name + ": ";
        const std::size_t at = headers.find(key);
        if (at == std::string::npos) return "";
        const std::size_t start = at + key.size();
        return headers.substr(start, headers.find("\r\n", start) - start);
    }
};

// A plain blocking-connect, non-blocking-read TCP client, so that the test thread can keep running the server.
class Client {
public:
    explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        // Loopback connects complete in the kernel's accept queue, without the server running.
        connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    }
    ~Client() { ::close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    [[nodiscard]] bool connected() const { return connected_; }

    bool send(const std::string& text) {
        return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
    }

    // Takes what has arrived; true once the server closed the connection.
    bool closed() {
        char buffer[4096];
        for (;;) {
            const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n > 0) {
                received_.append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                closed_ = true;
                return true;
            } else if (errno == EAGAIN) {
                return closed_;
            }
        }
    }

    // One complete response out of what has arrived (headers only for an answer to HEAD).
    std::optional<Response> take_response(bool head = false) {
        closed();
        const std::size_t end = received_.find("\r\n\r\n");
        if (end == std::string::npos) return std::nullopt;
        Response response;
        response.headers = received_.substr(0, end + 2);
        response.status = std::stoi(received_.substr(9, 3));
        const std::string length = response.header("Content-Length");
        const std::size_t body_size = head || length.empty() ? 0 : std::stoul(length);
        if (received_.size() < end + 4 + body_size) return std::nullopt;
        response.body = received_.substr(end + 4, body_size);
        received_.erase(0, end + 4 + body_size);
        return response;
    }

    [[nodiscard]] const std::string& received() const { return received_; }
    [[nodiscard]] int fd() const { return fd_; }

private:
    int fd_;
    bool connected_ = false;
    bool closed_ = false;
    std::string received_;
};

std::string request(const std::string& method, const std::string& target, bool keep_alive = true) {
    return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
           (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
}

std::uint16_t port_of(const MetricsServer& server) {
    const std::string address = server.address();
    return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

struct Fixture {
    explicit Fixture(const MetricsLimits& limits = {}) {
        auto render = [this] { return "scrape " + std::to_string(++renders) + "\n"; };
        auto opened = MetricsServer::open(io, {"127.0.0.1", 0}, render, limits);
        if (opened) {
            server = std::move(*opened);
        } else {
            ADD_FAILURE() << opened.error().message;
        }
    }

    std::optional<Response> exchange(Client& client, const std::string& text, bool head = false) {
        if (!client.send(text)) return std::nullopt;
        std::optional<Response> response;
        if (!run_until(io, [&] { return (response = client.take_response(head)).has_value() || client.closed(); })) {
            return std::nullopt;
        }
        return response;
    }

    boost::asio::io_context io;
    int renders = 0;
    std::unique_ptr<MetricsServer> server;
};

// FD_CLOEXEC of this process's TCP sockets whose local port is `port`, listening and accepted alike.
std::vector<bool> close_on_exec_of_sockets_on(std::uint16_t port) {
    std::vector<bool> flags;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        const int fd = std::stoi(entry.path().filename().string());
        sockaddr_in local{};
        socklen_t size = sizeof local;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size) != 0 || local.sin_family != AF_INET) continue;
        if (ntohs(local.sin_port) != port) continue;
        flags.push_back((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    }
    return flags;
}

}  // namespace

TEST(MetricsServer, ServesTheRenderedTextWithThePrometheusContentType) {
    Fixture f;
    ASSERT_TRUE(f.server);
    Client client(port_of(*f.server));
    ASSERT_TRUE(client.connected());
    auto response = f.exchange(client, request("GET", "/metrics", false));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(response->body, "scrape 1\n");
    EXPECT_TRUE(run_until(f.io, [&] { return client.closed(); })) << "Connection: close was not honoured";
}

TEST(MetricsServer, ReportsTheAddressActuallyBound) {
    Fixture f;
    ASSERT_TRUE(f.server);
    EXPECT_THAT(f.server->address(), StartsWith("127.0.0.1:"));
    EXPECT_NE(port_of(*f.server), 0);
}

TEST(MetricsServer, ReportsABindFailureAsASocketErrorNamingTheAddress) {
    Fixture f;
    ASSERT_TRUE(f.server);
    const std::uint16_t port = port_of(*f.server);
    auto second = MetricsServer::open(f.io, {"127.0.0.1", port}, [] { return std::string(); });
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().message,
              "cannot serve metrics on 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(EADDRINUSE));
    EXPECT_EQ(second.error().code, EADDRINUSE);
    EXPECT_EQ(second.error().exit, ExitCode::socket);
}

TEST(MetricsServer, ServesIpv6Loopback) {
    boost::asio::io_context io;
    auto server = MetricsServer::open(io, {"::1", 0}, [] { return std::string(); });
    if (!server && (server.error().code == EADDRNOTAVAIL || server.error().code == EAFNOSUPPORT)) {
        GTEST_SKIP() << "no IPv6 loopback here: " << server.error().message;
    }
    ASSERT_TRUE(server) << server.error().message;
    EXPECT_THAT((*server)->address(), StartsWith("[::1]:"));
}

TEST(MetricsServer, CallsRenderForEachOfTwoRequestsOnOneKeepAliveConnection) {
    Fixture f;
    ASSERT_TRUE(f.server);
    Client client(port_of(*f.server));
    auto first = f.exchange(client, request("GET", "/metrics"));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->body, "scrape 1\n");
    auto second = f.exchange(client, request("GET", "/metrics"));
    ASSERT_TRUE(second);
    EXPECT_EQ(second->status, 200);
    EXPECT_EQ(second->body, "scrape 2\n");
    EXPECT_FALSE(client.closed());
}

TEST(MetricsServer, AnswersHeadWithTheHeadersOfGetAndNoBody) {
    Fixture f;
    ASSERT_TRUE(f.server);
    Client client(port_of(*f.server));
    auto head = f.exchange(client, request("HEAD", "/metrics"), true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->header("Content-Length"), "9");
    EXPECT_EQ(head->header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    // No body bytes follow: the next response on the connection starts right away.
    auto get = f.exchange(client, request("GET", "/metrics"));
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200);
    EXPECT_EQ(get->body, "scrape 2\n");
}

TEST(MetricsServer, AnswersOtherPathsWith404AndIgnoresAQueryString) {
    Fixture f;
    ASSERT_TRUE(f.server);
    Client client(port_of(*f.server));
    for (const char* path : {"/", "/metricsx", "/metrics/", "/favicon.ico"}) {
        auto response = f.exchange(client, request("GET", path));
        ASSERT_TRUE(response) << path;
        EXPECT_EQ(response->status, 404) << path;
    }
    EXPECT_EQ(f.renders, 0);
    auto with_query = f.exchange(client, request("GET", "/metrics?name[]=x"));
    ASSERT_TRUE(with_query);
    EXPECT_EQ(with_query->status, 200);
}

TEST(MetricsServer, AnswersOtherMethodsWith405AndSaysWhichAreAllowed) {
    Fixture f;
    ASSERT_TRUE(f.server);
    Client client(port_of(*f.server));
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
        const std::string text = method + std::string(" /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        auto response = f.exchange(client, text);
        ASSERT_TRUE(response) << method;
        EXPECT_EQ(response->status, 405) << method;
        EXPECT_EQ(response->header("Allow"), "GET, HEAD") << method;
    }
    EXPECT_EQ(f.renders, 0);
}

TEST(MetricsServer, AnswersAFailedRenderWith500AndKeepsServing) {
    boost::asio::io_context io;
    bool fail = true;
    auto opened = MetricsServer::open(io, {"127.0.0.1", 0}, [&] {
        if (fail) throw std::runtime_error("snapshot unavailable");
        return std::string("ok\n");
    });
    ASSERT_TRUE(opened);
    Client client(port_of(**opened));
    ASSERT_TRUE(client.send(request("GET", "/metrics")));
    std::optional<Response> failed;
    ASSERT_TRUE(run_until(io, [&] { return (failed = client.take_response()).has_value(); }));
    EXPECT_EQ(failed->status, 500);
    fail = false;
    ASSERT_TRUE(client.send(request("GET", "/metrics")));
    std::optional<Response> served;
    ASSERT_TRUE(run_until(io, [&] { return (served = client.take_response()).has_value(); }));
    EXPECT_EQ(served->status, 200);
    EXPECT_EQ(served->body, "ok\n");
}

TEST(MetricsServer, ServesAnotherClientWhileASilentOneWaits) {
    Fixture f;
    ASSERT_TRUE(f.server);
    Client silent(port_of(*f.server));
    Client half(port_of(*f.server));
    ASSERT_TRUE(half.send("GET /metrics HTTP/1.1\r\nHo"));
    Client other(port_of(*f.server));
    auto response = f.exchange(other, request("GET", "/metrics"));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_FALSE(silent.closed());
    EXPECT_FALSE(half.closed());
}

TEST(MetricsServer, ClosesAClientThatDoesNotFinishItsRequestInTime) {
    MetricsLimits limits;
    limits.timeout = 200ms;
    Fixture f(limits);
    ASSERT_TRUE(f.server);
    Client silent(port_of(*f.server));
    Client half(port_of(*f.server));
    ASSERT_TRUE(half.send("GET /metrics HTTP/1.1\r\nHo"));
    EXPECT_TRUE(run_until(f.io, [&] { return silent.closed() && half.closed(); }));
    EXPECT_EQ(silent.received(), "");
    EXPECT_EQ(half.received(), "");
}

TEST(MetricsServer, ClosesAClientWhoseHeadersExceedTheLimit) {
    Fixture f;
    ASSERT_TRUE(f.server);
    Client client(port_of(*f.server));
    ASSERT_TRUE(client.send("GET /metrics HTTP/1.1\r\nX-Padding: " + std::string(9000, 'a') + "\r\n\r\n"));
    EXPECT_TRUE(run_until(f.io, [&] { return client.closed(); }));
    EXPECT_EQ(client.received(), "");
    EXPECT_EQ(f.renders, 0);
}

TEST(MetricsServer, ClosesTheSeventeenthConcurrentConnectionAtOnce) {
    Fixture f;
    ASSERT_TRUE(f.server);
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 17; ++i) {
        clients.push_back(std::make_unique<Client>(port_of(*f.server)));
        ASSERT_TRUE(clients.back()->connected());
    }
    // The accept queue is first in, first out: the seventeenth to connect is the one over the limit.
    EXPECT_TRUE(run_until(f.io, [&] { return clients.back()->closed(); }));
    for (int i = 0; i < 16; ++i) EXPECT_FALSE(clients[static_cast<std::size_t>(i)]->closed()) << i;
    auto response = f.exchange(*clients.front(), request("GET", "/metrics", false));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    // Once one leaves, a new connection gets its place.
    ASSERT_TRUE(run_until(f.io, [&] { return clients.front()->closed(); }));
    Client late(port_of(*f.server));
    auto late_response = f.exchange(late, request("GET", "/metrics"));
    ASSERT_TRUE(late_response);
    EXPECT_EQ(late_response->status, 200);
}

TEST(MetricsServer, MakesItsListeningAndAcceptedSocketsCloseOnExec) {
    Fixture f;
    ASSERT_TRUE(f.server);
    const std::uint16_t port = port_of(*f.server);
    Client client(port);
    ASSERT_TRUE(f.exchange(client, request("GET", "/metrics")));
    const auto flags = close_on_exec_of_sockets_on(port);
    ASSERT_EQ(flags.size(), 2u) << "the listening socket and the accepted one";
    EXPECT_TRUE(flags[0]);
    EXPECT_TRUE(flags[1]);
}

TEST(MetricsServer, DestroyedWithConnectionsPendingClosesThemAndNeverRendersAgain) {
    auto alive = std::make_shared<int>(0);
    boost::asio::io_context io;
    auto opened = MetricsServer::open(io, {"127.0.0.1", 0}, [weak = std::weak_ptr<int>(alive)] {
        const auto counter = weak.lock();
        if (!counter) ADD_FAILURE() << "render called after the server went away";
        return std::string("x\n");
    });
    ASSERT_TRUE(opened);
    std::unique_ptr<MetricsServer> server = std::move(*opened);
    const std::uint16_t port = port_of(*server);
    Client served(port);
    ASSERT_TRUE(served.send(request("GET", "/metrics")));
    ASSERT_TRUE(run_until(io, [&] { return served.take_response().has_value(); }));
    Client waiting(port);
    ASSERT_TRUE(served.send(request("GET", "/metrics")));  // read by nobody yet
    server.reset();
    alive.reset();
    EXPECT_TRUE(run_until(io, [&] { return served.closed() && waiting.closed(); }));
    EXPECT_EQ(served.received(), "");
    io.restart();
    io.poll();  // whatever handlers were left run against a closed server
}

TEST(MetricsServer, DestroyedBeforeItsIoContextEverRunsAgainLeavesNothingBehind) {
    auto io = std::make_unique<boost::asio::io_context>();
    auto opened = MetricsServer::open(*io, {"127.0.0.1", 0}, [] { return std::string("x\n"); });
    ASSERT_TRUE(opened);
    std::unique_ptr<MetricsServer> server = std::move(*opened);
    Client client(port_of(*server));
    ASSERT_TRUE(client.send(request("GET", "/metrics")));
    ASSERT_TRUE(run_until(*io, [&] { return client.take_response().has_value(); }));
    server.reset();
    io.reset();  // destroys the queued handlers, and with them the last references to the server's state
    EXPECT_TRUE(client.closed());
}
