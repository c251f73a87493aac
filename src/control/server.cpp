#include "control/server.hpp"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <map>

#include "sys/control_socket.hpp"

namespace preforkctl::control {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

namespace {

// One client connection: requests are read and answered one after the other; an answer that is waited for
// (a rolling restart) holds the next request back until it has been written.
class Session : public std::enable_shared_from_this<Session> {
public:
    Session(Socket socket, Peer peer, Handler& handler, std::function<void(Session*)> on_close)
        : socket_(std::move(socket)),
          timer_(socket_.get_executor()),
          buffer_(kMaxRequestBytes + 1),
          peer_(peer),
          handler_(handler),
          on_close_(std::move(on_close)) {}

    void start() { read_request(); }

    /// Writes one line and closes (a refusal before any request is read).
    void refuse(const std::string& why) {
        closing_ = true;
        send(encode_reply(refused(why)));
    }

    void on_close(std::function<void(Session*)> callback) { on_close_ = std::move(callback); }

    /// The server is going away: closing must not call back into it.
    void forget_server() { on_close_ = nullptr; }

    void close() {
        if (closed_) return;
        closed_ = true;
        boost::system::error_code ignored;
        timer_.cancel();
        socket_.close(ignored);
        if (on_close_) on_close_(this);
    }

private:
    void arm_timeout() {
        timer_.expires_after(kClientTimeout);
        timer_.async_wait([self = weak_from_this()](const boost::system::error_code& error) {
            auto session = self.lock();
            if (error || !session) return;
            spdlog::debug("control: dropping client pid {} (no request or unread answer within {}s)",
                          session->peer_.pid, kClientTimeout.count());
            session->close();
        });
    }

    void read_request() {
        if (closed_ || closing_) return;
        arm_timeout();
        asio::async_read_until(socket_, buffer_, '\n',
                               [self = shared_from_this()](const boost::system::error_code& error, std::size_t size) {
                                   self->on_request(error, size);
                               });
    }

    void on_request(const boost::system::error_code& error, std::size_t size) {
        if (closed_) return;
        timer_.cancel();
        if (error == asio::error::not_found) {  // the buffer filled up without a newline
            spdlog::warn("control: client pid {} sent a request longer than {} bytes; dropped", peer_.pid,
                         kMaxRequestBytes);
            closing_ = true;
            send(encode_reply(refused("request longer than " + std::to_string(kMaxRequestBytes) + " bytes")));
            return;
        }
        if (error) {
            close();
            return;
        }
        std::string line(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) +
                                                                  static_cast<std::ptrdiff_t>(size - 1));
        buffer_.consume(size);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto request = parse_request(line);
        if (!request) {
            spdlog::debug("control: refused a request from pid {}: {}", peer_.pid, request.error().message);
            send(encode_reply(refused(request.error().message)));
            return;
        }
        waiting_ = true;
        std::weak_ptr<Session> self = weak_from_this();
        handler_(*request, peer_, [self](const Reply& reply) {
            if (auto session = self.lock()) session->answer(reply);
        });
    }

    void answer(const Reply& reply) {
        if (!waiting_ || closed_) return;
        waiting_ = false;
        keep_open_ = reply.keep_open;
        send(encode_reply(reply));
    }

    void send(std::string line) {
        if (closed_) return;
        line.push_back('\n');
        outgoing_ = std::move(line);
        arm_timeout();
        asio::async_write(socket_, asio::buffer(outgoing_),
                          [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
                              self->on_sent(error);
                          });
    }

    void on_sent(const boost::system::error_code& error) {
        if (closed_) return;
        timer_.cancel();
        if (error || closing_) {
            close();
            return;
        }
        if (keep_open_) {
            // `stop`: the client learns that preforkctl is gone when this connection closes at its exit.
            socket_.async_wait(Socket::wait_read, [self = shared_from_this()](const boost::system::error_code&) {
                self->close();
            });
            return;
        }
        read_request();
    }

    Socket socket_;
    asio::steady_timer timer_;
    asio::streambuf buffer_;
    Peer peer_;
    Handler& handler_;
    std::function<void(Session*)> on_close_;
    std::string outgoing_;
    bool waiting_ = false;    // a request is with the handler
    bool keep_open_ = false;
    bool closing_ = false;    // close once the current line is written
    bool closed_ = false;
};

}  // namespace

class ControlServer::Impl {
public:
    Impl(asio::io_context& io, std::string path, sys::ControlSocket socket, Handler handler)
        : path_(std::move(path)),
          socket_file_{sys::Fd{}, socket.device, socket.inode},
          acceptor_(io, asio::local::stream_protocol(), socket.fd.release()),
          handler_(std::move(handler)) {}

    ~Impl() {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        // Sessions may outlive this (a pending handler holds one): they must not call back into it.
        auto sessions = std::move(sessions_);
        sessions_.clear();
        for (auto& [raw, session] : sessions) {
            session->forget_server();
            session->close();
        }
        sys::remove_control_socket(path_, socket_file_);
    }

    void accept() {
        acceptor_.async_accept([this](const boost::system::error_code& error, Socket socket) {
            if (error == asio::error::operation_aborted) return;
            if (!error) admit(std::move(socket));
            accept();
        });
    }

    std::string path_;
    int descriptor() { return acceptor_.native_handle(); }

private:
    void admit(Socket socket) {
        // Workers are forked from this process: no connection of a control client may reach one of them.
        ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
        const auto credentials = sys::peer_credentials(socket.native_handle());
        const Peer peer{credentials ? credentials->pid : 0, credentials ? credentials->uid : ~0u,
                        socket.native_handle()};
        auto session = std::make_shared<Session>(std::move(socket), peer, handler_, nullptr);
        if (!credentials || (peer.uid != 0 && peer.uid != ::geteuid())) {
            spdlog::warn("control: refused a client (pid {}, uid {}): only root and uid {} may use this socket",
                         peer.pid, static_cast<int>(peer.uid), ::geteuid());
            session->refuse("permission denied: only root and uid " + std::to_string(::geteuid()) +
                            " may control this preforkctl");
            return;
        }
        if (sessions_.size() >= kMaxClients) {
            spdlog::warn("control: {} clients already connected; refused pid {}", kMaxClients, peer.pid);
            session->refuse("too many control clients at once; try again");
            return;
        }
        session->on_close([this](Session* closed) { sessions_.erase(closed); });
        sessions_.emplace(session.get(), session);
        session->start();
    }

    sys::ControlSocket socket_file_;
    asio::local::stream_protocol::acceptor acceptor_;
    Handler handler_;
    std::map<Session*, std::shared_ptr<Session>> sessions_;
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() = default;

Result<std::unique_ptr<ControlServer>> ControlServer::open(asio::io_context& io, const std::string& path,
                                                           Handler handler) {
    auto socket = sys::listen_control_socket(path);
    if (!socket) return socket.error();
    auto impl = std::make_unique<Impl>(io, path, std::move(*socket), std::move(handler));
    impl->accept();
    return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

Result<std::unique_ptr<ControlServer>> ControlServer::adopt(asio::io_context& io, const std::string& path, int fd,
                                                            Handler handler) {
    struct stat file {};
    if (::stat(path.c_str(), &file) != 0) {
        ::close(fd);
        return Error{"the control socket " + path + " is gone: " + std::strerror(errno), 0, ExitCode::socket};
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    sys::ControlSocket socket{sys::Fd(fd), file.st_dev, file.st_ino};
    auto impl = std::make_unique<Impl>(io, path, std::move(socket), std::move(handler));
    impl->accept();
    return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

int ControlServer::descriptor() const { return impl_->descriptor(); }

const std::string& ControlServer::path() const { return impl_->path_; }

}  // namespace preforkctl::control
