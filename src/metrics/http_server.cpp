#include "metrics/http_server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <exception>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace preforkctl::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session;

// Asio creates and accepts sockets without SOCK_CLOEXEC; workers are forked from this process and must not
// inherit them. Setting the flag right after creation cannot race a fork: both happen on this one thread.
boost::system::error_code set_close_on_exec(int fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
        return {errno, boost::system::system_category()};
    }
    return {};
}

constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

}  // namespace

struct MetricsServer::State : std::enable_shared_from_this<State> {
    State(asio::io_context& io, std::function<std::string()> render_text, const MetricsLimits& client_limits)
        : acceptor(io), retry(io), render(std::move(render_text)), limits(client_limits) {}

    void accept();
    void on_accept(const boost::system::error_code& ec, tcp::socket socket);
    void close();

    tcp::acceptor acceptor;
    asio::steady_timer retry;
    std::function<std::string()> render;
    MetricsLimits limits;
    std::unordered_set<Session*> sessions;  // each registers itself for its lifetime
    bool closed = false;
};

namespace {

// One client connection: read a request, write its response, again while the client keeps the connection
// alive. Pending handlers own the session; the session owns a share of the server's state, so a server
// destroyed with handlers still queued leaves nothing dangling.
class Session : public std::enable_shared_from_this<Session> {
public:
    Session(std::shared_ptr<MetricsServer::State> server, tcp::socket socket)
        : server_(std::move(server)), stream_(std::move(socket)), buffer_(server_->limits.header_limit * 2) {
        server_->sessions.insert(this);
    }
    ~Session() { server_->sessions.erase(this); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void read() {
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(server_->limits.header_limit));
        parser_->body_limit(server_->limits.header_limit);
        stream_.expires_after(server_->limits.timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](const beast::error_code& ec, std::size_t) { self->on_read(ec); });
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

private:
    // A read error is the client leaving, a timeout, or a request too large or malformed: all end the
    // connection without an answer.
    void on_read(const beast::error_code& ec) {
        if (ec || server_->closed) {
            close();
            return;
        }
        respond(parser_->get());
        stream_.expires_after(server_->limits.timeout);
        http::async_write(stream_, response_, [self = shared_from_this()](const beast::error_code& write_ec,
                                                                          std::size_t) { self->on_write(write_ec); });
    }

    void on_write(const beast::error_code& ec) {
        if (ec || server_->closed || !response_.keep_alive()) {
            beast::error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
            stream_.close();
            return;
        }
        read();
    }

    void respond(const http::request<http::string_body>& request) {
        response_ = {};
        response_.version(request.version());
        response_.keep_alive(request.keep_alive());
        response_.set(http::field::server, "preforkctl");
        const beast::string_view target = request.target();
        const beast::string_view path = target.substr(0, target.find('?'));
        const bool readable = request.method() == http::verb::get || request.method() == http::verb::head;
        if (path != "/metrics") {
            plain(http::status::not_found, "Not found: metrics are at /metrics\n");
        } else if (!readable) {
            plain(http::status::method_not_allowed, "Method not allowed: use GET or HEAD\n");
            response_.set(http::field::allow, "GET, HEAD");
        } else {
            // A scrape must never take the supervisor down with it: an exception thrown while rendering ends
            // this one response, not the event loop that called us.
            try {
                response_.body() = server_->render();
                response_.result(http::status::ok);
                response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            } catch (const std::exception& e) {
                spdlog::warn("metrics: cannot render the metrics: {}", e.what());
                plain(http::status::internal_server_error, "Cannot render the metrics\n");
            }
        }
        response_.prepare_payload();
        if (request.method() == http::verb::head) {
            // HEAD answers with the headers GET would have, Content-Length included, and no body.
            const std::size_t length = response_.body().size();
            response_.body().clear();
            response_.content_length(length);
        }
    }

    void plain(http::status status, const char* text) {
        response_.result(status);
        response_.set(http::field::content_type, "text/plain; charset=utf-8");
        response_.body() = text;
    }

    std::shared_ptr<MetricsServer::State> server_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;  // one per request, as Beast requires
    http::response<http::string_body> response_;
};

}  // namespace

void MetricsServer::State::accept() {
    acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
        self->on_accept(ec, std::move(socket));
    });
}

void MetricsServer::State::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
    if (closed || ec == asio::error::operation_aborted) return;
    if (ec) {
        if (ec == asio::error::connection_aborted) {
            accept();
            return;
        }
        // EMFILE, ENFILE, ENOBUFS leave the connection queued: accepting again at once would spin the loop.
        spdlog::warn("metrics: cannot accept a connection: {}", std::strerror(ec.value()));
        retry.expires_after(kAcceptRetryDelay);
        retry.async_wait([self = shared_from_this()](const boost::system::error_code& wait_ec) {
            if (!wait_ec && !self->closed) self->accept();
        });
        return;
    }
    if (sessions.size() < limits.max_connections && !set_close_on_exec(socket.native_handle())) {
        std::make_shared<Session>(shared_from_this(), std::move(socket))->read();
    } else {
        boost::system::error_code ignored;
        socket.close(ignored);
    }
    accept();
}

void MetricsServer::State::close() {
    closed = true;
    render = nullptr;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    retry.cancel();
    const std::vector<Session*> open(sessions.begin(), sessions.end());
    for (Session* session : open) session->close();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(asio::io_context& io, const MetricsAddress& address,
                                                           std::function<std::string()> render,
                                                           const MetricsLimits& limits) {
    auto fail = [&](const boost::system::error_code& ec) {
        return Error{"cannot serve metrics on " + format_metrics_address(address) + ": " + std::strerror(ec.value()),
                     ec.value(), ExitCode::socket};
    };
    boost::system::error_code ec;
    const asio::ip::address ip = asio::ip::make_address(address.host, ec);
    if (ec) return fail(ec);
    const tcp::endpoint endpoint(ip, address.port);
    auto state = std::make_shared<State>(io, std::move(render), limits);
    tcp::acceptor& acceptor = state->acceptor;
    if (acceptor.open(endpoint.protocol(), ec); ec) return fail(ec);
    if (ec = set_close_on_exec(acceptor.native_handle()); ec) return fail(ec);
    if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec) return fail(ec);
    if (acceptor.bind(endpoint, ec); ec) return fail(ec);
    if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) return fail(ec);
    state->accept();
    return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(state)));
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::adopt(asio::io_context& io, int fd,
                                                            std::function<std::string()> render,
                                                            const MetricsLimits& limits) {
    auto state = std::make_shared<State>(io, std::move(render), limits);
    boost::system::error_code ec;
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    const auto protocol = address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
    if (state->acceptor.assign(protocol, fd, ec); ec) {
        ::close(fd);
        return Error{std::string("cannot serve metrics on the socket handed over: ") + std::strerror(ec.value()),
                     ec.value(), ExitCode::socket};
    }
    if (ec = set_close_on_exec(fd); ec) return Error{"cannot serve metrics: " + ec.message(), ec.value(), ExitCode::socket};
    state->accept();
    return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(state)));
}

int MetricsServer::descriptor() const { return state_->acceptor.native_handle(); }

MetricsServer::MetricsServer(std::shared_ptr<State> state) : state_(std::move(state)) {}

MetricsServer::~MetricsServer() { state_->close(); }

std::string MetricsServer::address() const {
    boost::system::error_code ec;
    const tcp::endpoint endpoint = state_->acceptor.local_endpoint(ec);
    if (ec) return "";
    return format_metrics_address({endpoint.address().to_string(), endpoint.port()});
}

}  // namespace preforkctl::metrics
