// The example server bundled with preforkctl: a small single-threaded epoll HTTP/1.1 keep-alive server that
// answers every request with "pid=<pid> slot=<slot>". It knows nothing about preforkctl and takes its listening
// sockets the way an unmodified third-party server would:
//   - systemd socket activation (LISTEN_FDS / LISTEN_PID, sockets at fds 3...),
//   - PREFORK_REUSEPORT=1 with HOST and PORT: it binds its own SO_REUSEPORT socket,
//   - --listen HOST:PORT.
// GET /exit answers and then exits with status 3 (for restart tests). SIGTERM/SIGINT stop it gracefully.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t kMaxHead = 64 * 1024;  // also the largest an input buffer ever grows
constexpr std::size_t kInitialBuffer = 2048;
constexpr int kBacklog = 4096;
constexpr int kMaxEvents = 256;
constexpr std::int64_t kDrainMillis = 900;
constexpr std::int64_t kAcceptPauseMillis = 100;
constexpr int kMaxListenFds = 1024;

void write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t written = ::write(fd, text.data(), text.size());
        if (written < 0) {
            if (errno == EINTR) continue;
            return;
        }
        text.remove_prefix(static_cast<std::size_t>(written));
    }
}

void say(const std::string& line) { write_all(STDOUT_FILENO, line + "\n"); }

[[noreturn]] void fail(int status, const std::string& message) {
    write_all(STDERR_FILENO, "hello_server: " + message + "\n");
    std::exit(status);
}

std::string error_text(int error) { return std::strerror(error); }

std::int64_t now_millis() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

template <typename Int>
std::optional<Int> parse_number(std::string_view text) {
    Int value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

bool equals_ignoring_case(std::string_view left, std::string_view right) {
    if (left.size() != right.size()) return false;
    for (std::size_t i = 0; i < left.size(); ++i) {
        const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(left[i]) != lower(right[i])) return false;
    }
    return true;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

// RFC 9110 token characters (method and header names).
bool is_token_char(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char);
}

bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

// ---------------------------------------------------------------------------------------------------------------
// Sockets

struct Listener {
    int fd = -1;
    bool tcp = false;  // TCP_NODELAY only applies to TCP connections
};

std::string describe_address(int fd) {
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return "?";
    char text[INET6_ADDRSTRLEN] = {};
    if (storage.ss_family == AF_INET) {
        const auto* address = reinterpret_cast<const sockaddr_in*>(&storage);
        ::inet_ntop(AF_INET, &address->sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(ntohs(address->sin_port));
    }
    if (storage.ss_family == AF_INET6) {
        const auto* address = reinterpret_cast<const sockaddr_in6*>(&storage);
        ::inet_ntop(AF_INET6, &address->sin6_addr, text, sizeof text);
        return std::string("[") + text + "]:" + std::to_string(ntohs(address->sin6_port));
    }
    if (storage.ss_family == AF_UNIX) {
        const auto* address = reinterpret_cast<const sockaddr_un*>(&storage);
        return "unix:" + std::string(address->sun_path);
    }
    return "?";
}

int socket_int_option(int fd, int level, int name) {
    int value = 0;
    socklen_t length = sizeof value;
    if (::getsockopt(fd, level, name, &value, &length) != 0) return -1;
    return value;
}

void make_non_blocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        fail(1, "cannot make fd " + std::to_string(fd) + " non-blocking: " + error_text(errno));
    }
}

// sd_listen_fds(): the sockets are ours only if LISTEN_PID names this very process.
std::vector<Listener> adopt_listen_fds(const std::string& count_text) {
    const char* pid_text = std::getenv("LISTEN_PID");
    if (pid_text == nullptr) fail(1, "LISTEN_FDS is set but LISTEN_PID is not; refusing to guess");
    const auto pid = parse_number<pid_t>(pid_text);
    if (!pid || *pid != ::getpid()) {
        fail(1, "LISTEN_PID=" + std::string(pid_text) + " is not this process (pid " + std::to_string(::getpid()) +
                    "); the sockets are not meant for it");
    }
    const auto count = parse_number<int>(count_text);
    if (!count || *count < 1 || *count > kMaxListenFds) fail(1, "invalid LISTEN_FDS=" + count_text);

    std::vector<Listener> listeners;
    for (int fd = 3; fd < 3 + *count; ++fd) {
        if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            fail(1, "LISTEN_FDS=" + count_text + " but fd " + std::to_string(fd) + " is unusable: " +
                        error_text(errno));
        }
        if (socket_int_option(fd, SOL_SOCKET, SO_TYPE) != SOCK_STREAM ||
            socket_int_option(fd, SOL_SOCKET, SO_ACCEPTCONN) != 1) {
            fail(1, "fd " + std::to_string(fd) + " is not a listening stream socket");
        }
        make_non_blocking(fd);
        const int domain = socket_int_option(fd, SOL_SOCKET, SO_DOMAIN);
        listeners.push_back({fd, domain == AF_INET || domain == AF_INET6});
    }
    return listeners;
}

// Binds HOST:PORT (IPv4, IPv6 literal with or without brackets, or a name); returns the socket.
Listener bind_listener(std::string host, const std::string& port, bool reuseport) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "0.0.0.0";
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* results = nullptr;
    const int resolved = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &results);
    if (resolved != 0) fail(1, "cannot resolve " + host + ":" + port + ": " + ::gai_strerror(resolved));

    int last_error = 0;
    int fd = -1;
    for (const addrinfo* candidate = results; candidate != nullptr && fd < 0; candidate = candidate->ai_next) {
        fd = ::socket(candidate->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_error = errno;
            continue;
        }
        const int on = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if ((reuseport && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) ||
            ::bind(fd, candidate->ai_addr, candidate->ai_addrlen) != 0 || ::listen(fd, kBacklog) != 0) {
            last_error = errno;
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(results);
    if (fd < 0) fail(1, "cannot listen on " + host + ":" + port + ": " + error_text(last_error));
    return {fd, true};
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

struct Request {
    bool keep_alive = false;
    bool http10 = false;
    bool head_only = false;  // HEAD: same headers, no body
    bool exit = false;
    std::uint64_t content_length = 0;
};

// Parses a complete request head (ending with CRLFCRLF). Returns false for anything malformed or that this server
// cannot frame (Transfer-Encoding).
bool parse_head(std::string_view head, Request& request) {
    std::size_t line_end = head.find("\r\n");
    const std::string_view request_line = head.substr(0, line_end);
    const std::size_t first_space = request_line.find(' ');
    const std::size_t second_space = request_line.find(' ', first_space + 1);
    if (first_space == std::string_view::npos || second_space == std::string_view::npos) return false;
    const std::string_view method = request_line.substr(0, first_space);
    const std::string_view target = request_line.substr(first_space + 1, second_space - first_space - 1);
    const std::string_view version = request_line.substr(second_space + 1);
    if (!is_token(method) || target.empty()) return false;
    if (std::any_of(target.begin(), target.end(), [](char c) { return c == ' ' || is_control(c); })) return false;
    if (version == "HTTP/1.1") {
        request.http10 = false;
    } else if (version == "HTTP/1.0") {
        request.http10 = true;
    } else {
        return false;
    }
    request.head_only = method == "HEAD";
    request.exit = target.substr(0, target.find('?')) == "/exit";

    bool wants_close = false;
    bool wants_keep_alive = false;
    bool has_length = false;
    for (std::size_t start = line_end + 2; start < head.size(); start = line_end + 2) {
        line_end = head.find("\r\n", start);
        const std::string_view line = head.substr(start, line_end - start);
        if (line.empty()) break;  // the blank line that ends the head
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return false;
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));
        if (!is_token(name)) return false;  // also rejects obsolete line folding and "Name :"
        if (std::any_of(value.begin(), value.end(), [](char c) { return c != '\t' && is_control(c); })) return false;

        if (equals_ignoring_case(name, "content-length")) {
            const auto length = value.size() <= 18 ? parse_number<std::uint64_t>(value) : std::nullopt;
            if (!length || (has_length && *length != request.content_length)) return false;
            request.content_length = *length;
            has_length = true;
        } else if (equals_ignoring_case(name, "transfer-encoding")) {
            return false;
        } else if (equals_ignoring_case(name, "connection")) {
            std::string_view rest = value;
            while (!rest.empty()) {
                const std::size_t comma = rest.find(',');
                const std::string_view option = trim(rest.substr(0, comma));
                wants_close = wants_close || equals_ignoring_case(option, "close");
                wants_keep_alive = wants_keep_alive || equals_ignoring_case(option, "keep-alive");
                rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            }
        }
    }
    request.keep_alive = !wants_close && (!request.http10 || wants_keep_alive);
    return true;
}

// Every response this server can send, built once: answering is a memcpy.
struct Responses {
    std::string keep_alive;     // HTTP/1.1 default
    std::string keep_alive_10;  // HTTP/1.0 client that asked for keep-alive
    std::string close;
    std::size_t body_size = 0;
    std::string bad_request;

    explicit Responses(const std::string& body) : body_size(body.size()) {
        const std::string headers =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
        keep_alive = headers + "\r\n" + body;
        keep_alive_10 = headers + "Connection: keep-alive\r\n\r\n" + body;
        close = headers + "Connection: close\r\n\r\n" + body;
        const std::string message = "bad request\n";
        bad_request = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: " +
                      std::to_string(message.size()) + "\r\nConnection: close\r\n\r\n" + message;
    }
};

// Connection state; objects are indexed by fd and reused, so buffers survive from one connection to the next.
struct Connection {
    int fd = -1;
    bool open = false;
    std::unique_ptr<char[]> input;
    std::size_t capacity = 0;
    std::size_t begin = 0;    // first byte not yet consumed
    std::size_t end = 0;      // one past the last byte received
    std::size_t scanned = 0;  // bytes after `begin` known not to hold the end of the head
    std::uint64_t body_left = 0;
    std::string output;
    std::size_t sent = 0;
    bool close_after_flush = false;
    bool exit_after_flush = false;
    bool rejected = false;
    bool lingering = false;  // our side is shut down; discarding input until the peer closes

    void reset(int new_fd) {
        fd = new_fd;
        open = true;
        begin = end = scanned = 0;
        body_left = 0;
        output.clear();
        sent = 0;
        close_after_flush = exit_after_flush = rejected = lingering = false;
    }
    [[nodiscard]] bool idle() const { return lingering || (begin == end && body_left == 0 && output.empty()); }
};

// ---------------------------------------------------------------------------------------------------------------
// Server

enum class Source : std::uint32_t { listener = 1, signal = 2, client = 3 };

std::uint64_t tag(Source source, int fd) {
    return (static_cast<std::uint64_t>(source) << 32) | static_cast<std::uint32_t>(fd);
}

class Server {
public:
    Server(std::vector<Listener> listeners, const std::string& body, std::string pid_text)
        : listeners_(std::move(listeners)), responses_(body), pid_text_(std::move(pid_text)) {}

    int run();

private:
    void watch_listeners();
    void unwatch_listeners();
    void accept_from(const Listener& listener);
    void on_signal();
    void begin_drain();
    void on_client(Connection& connection, std::uint32_t events);
    void serve(Connection& connection, bool peer_hung_up);
    void handle_requests(Connection& connection);
    void reject(Connection& connection);
    bool make_room(Connection& connection);
    bool flush(Connection& connection);
    void linger(Connection& connection);
    void close_connection(Connection& connection);

    std::vector<Listener> listeners_;
    Responses responses_;
    std::string pid_text_;
    int epoll_fd_ = -1;
    int signal_fd_ = -1;
    std::vector<std::unique_ptr<Connection>> connections_;  // by fd
    std::size_t open_connections_ = 0;
    std::uint64_t accepted_ = 0;  // connections accepted in all (reported at exit, for the benchmarks)
    bool stopping_ = false;
    bool stop_now_ = false;
    std::int64_t drain_deadline_ = 0;
    bool accept_paused_ = false;
    std::int64_t accept_resume_at_ = 0;
};

int Server::run() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) fail(1, "epoll_create1: " + error_text(errno));

    sigset_t stop_signals;
    ::sigemptyset(&stop_signals);
    ::sigaddset(&stop_signals, SIGTERM);
    ::sigaddset(&stop_signals, SIGINT);
    ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    signal_fd_ = ::signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) fail(1, "signalfd: " + error_text(errno));
    epoll_event signal_event{};
    signal_event.events = EPOLLIN;
    signal_event.data.u64 = tag(Source::signal, signal_fd_);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, signal_fd_, &signal_event);

    watch_listeners();

    epoll_event events[kMaxEvents];
    while (!stop_now_) {
        int timeout = -1;
        if (stopping_ || accept_paused_) {
            const std::int64_t wake_at = stopping_ ? drain_deadline_ : accept_resume_at_;
            timeout = static_cast<int>(std::clamp<std::int64_t>(wake_at - now_millis(), 0, kDrainMillis));
        }
        const int count = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
        if (count < 0 && errno != EINTR) fail(1, "epoll_wait: " + error_text(errno));
        for (int i = 0; i < count; ++i) {
            const auto source = static_cast<Source>(events[i].data.u64 >> 32);
            const int fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
            switch (source) {
                case Source::listener:
                    for (const Listener& listener : listeners_) {
                        if (listener.fd == fd && !stopping_ && !accept_paused_) accept_from(listener);
                    }
                    break;
                case Source::signal: on_signal(); break;
                case Source::client: {
                    const auto index = static_cast<std::size_t>(fd);
                    if (index < connections_.size() && connections_[index] && connections_[index]->open) {
                        on_client(*connections_[index], events[i].events);
                    }
                    break;
                }
            }
        }
        if (stopping_ && (open_connections_ == 0 || now_millis() >= drain_deadline_)) break;
        if (accept_paused_ && !stopping_ && now_millis() >= accept_resume_at_) {
            accept_paused_ = false;
            watch_listeners();
        }
    }
    say("hello_server pid=" + pid_text_ + " stopping after " + std::to_string(accepted_) + " connections");
    return 0;
}

void Server::watch_listeners() {
    for (const Listener& listener : listeners_) {
        epoll_event event{};
        // Several processes wait on the same socket: wake one of them per connection, not all.
        event.events = EPOLLIN | EPOLLEXCLUSIVE;
        event.data.u64 = tag(Source::listener, listener.fd);
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listener.fd, &event) != 0) {
            fail(1, "epoll_ctl(listener " + std::to_string(listener.fd) + "): " + error_text(errno));
        }
    }
}

// A shared socket's file stays open in other processes, so close() alone would not take it out of the epoll set.
void Server::unwatch_listeners() {
    for (const Listener& listener : listeners_) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listener.fd, nullptr);
}

void Server::accept_from(const Listener& listener) {
    for (;;) {
        const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
                case EAGAIN: return;
                case EINTR:
                case ECONNABORTED:
                case EPROTO:
                case EPERM: continue;
                default:
                    // Out of fds or memory, or the socket was shut down (preforkctl re-arms it): try again soon
                    // rather than spin on a level-triggered listener.
                    unwatch_listeners();
                    accept_paused_ = true;
                    accept_resume_at_ = now_millis() + kAcceptPauseMillis;
                    return;
            }
        }
        if (listener.tcp) {
            const int on = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        }
        const auto index = static_cast<std::size_t>(fd);
        if (index >= connections_.size()) connections_.resize(index + 1);
        if (!connections_[index]) connections_[index] = std::make_unique<Connection>();
        Connection& connection = *connections_[index];
        connection.reset(fd);
        ++open_connections_;
        ++accepted_;
        epoll_event event{};
        // Edge-triggered with EPOLLOUT always armed: no epoll_ctl per request, and EPOLLOUT only fires after a
        // send found the socket buffer full.
        event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        event.data.u64 = tag(Source::client, fd);
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) close_connection(connection);
    }
}

void Server::on_signal() {
    signalfd_siginfo info{};
    while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (stopping_) {
            stop_now_ = true;  // a second TERM/INT: do not wait for the connections
        } else {
            begin_drain();
        }
    }
}

void Server::begin_drain() {
    // A connection this worker was woken for (EPOLLEXCLUSIVE wakes one waiter) is taken and served now;
    // left in the queue it would wait for the next connection to wake a sibling.
    if (!accept_paused_) {
        for (const Listener& listener : listeners_) accept_from(listener);
    }
    stopping_ = true;
    drain_deadline_ = now_millis() + kDrainMillis;
    if (!accept_paused_) unwatch_listeners();
    for (const Listener& listener : listeners_) ::close(listener.fd);
    listeners_.clear();
    // Closing an idle keep-alive connection now would race with a request the client is sending on it (the
    // kernel resets a socket closed with unread data). Instead every connection gets its next answer with
    // "Connection: close", and only connections still silent at the drain deadline are closed.
    for (const auto& connection : connections_) {
        if (!connection || !connection->open || connection->lingering) continue;
        connection->close_after_flush = connection->close_after_flush || !connection->output.empty();
    }
}

void Server::on_client(Connection& connection, std::uint32_t events) {
    if ((events & EPOLLERR) != 0 || ((events & EPOLLHUP) != 0 && (events & EPOLLIN) == 0)) {
        close_connection(connection);
        return;
    }
    if (!connection.output.empty() && !flush(connection)) return;
    serve(connection, (events & (EPOLLRDHUP | EPOLLHUP)) != 0);
}

// Answers what is buffered, reads more, and repeats until the socket has nothing more to give or cannot take
// more output (then EPOLLOUT resumes it).
void Server::serve(Connection& connection, bool peer_hung_up) {
    if (connection.lingering) {
        linger(connection);
        return;
    }
    bool drained = false;
    for (;;) {
        handle_requests(connection);
        if (!connection.output.empty() && !flush(connection)) return;
        if (!connection.open) return;
        // Edge-triggered epoll reports any data that arrives after this point, so a short read saves the recv
        // that would only say EAGAIN -- unless the peer's FIN is already queued and would never be reported again.
        if (drained && !peer_hung_up) return;
        if (!make_room(connection)) return;
        const std::size_t room = connection.capacity - connection.end;
        const ssize_t received = ::recv(connection.fd, connection.input.get() + connection.end, room, 0);
        if (received > 0) {
            connection.end += static_cast<std::size_t>(received);
            drained = static_cast<std::size_t>(received) < room;
            continue;
        }
        if (received < 0 && errno == EINTR) continue;
        if (received < 0 && errno == EAGAIN) return;
        close_connection(connection);  // EOF or error: nothing can be answered any more
        return;
    }
}

void Server::handle_requests(Connection& connection) {
    while (!connection.close_after_flush) {
        if (connection.body_left > 0) {
            const std::size_t skipped = static_cast<std::size_t>(
                std::min<std::uint64_t>(connection.body_left, connection.end - connection.begin));
            connection.begin += skipped;
            connection.body_left -= skipped;
            if (connection.body_left > 0) return;
        }
        char* const buffer = connection.input.get();
        // RFC 9112 2.2: ignore empty lines before a request line.
        while (connection.end - connection.begin >= 2 && buffer[connection.begin] == '\r' &&
               buffer[connection.begin + 1] == '\n') {
            connection.begin += 2;
            connection.scanned = 0;
        }
        const std::size_t available = connection.end - connection.begin;
        if (available == 0) return;
        const std::size_t search_from = connection.begin + (connection.scanned >= 3 ? connection.scanned - 3 : 0);
        const void* terminator = ::memmem(buffer + search_from, connection.end - search_from, "\r\n\r\n", 4);
        if (terminator == nullptr) {
            if (available >= kMaxHead) reject(connection);
            connection.scanned = available;
            return;
        }
        const char* head_start = buffer + connection.begin;
        const auto head_size = static_cast<std::size_t>(static_cast<const char*>(terminator) + 4 - head_start);
        Request request;
        if (head_size > kMaxHead || !parse_head(std::string_view(head_start, head_size), request)) {
            reject(connection);
            return;
        }
        connection.begin += head_size;
        connection.scanned = 0;
        connection.body_left = request.content_length;

        const bool keep_alive = request.keep_alive && !request.exit && !stopping_;
        const std::string& response =
            !keep_alive ? responses_.close : (request.http10 ? responses_.keep_alive_10 : responses_.keep_alive);
        const std::size_t size = request.head_only ? response.size() - responses_.body_size : response.size();
        connection.output.append(response, 0, size);
        connection.close_after_flush = !keep_alive;
        connection.exit_after_flush = request.exit;
    }
}

void Server::reject(Connection& connection) {
    connection.output.append(responses_.bad_request);
    connection.close_after_flush = true;
    connection.rejected = true;
}

// Makes space at the end of the input buffer: reuse consumed bytes first, then grow up to kMaxHead.
bool Server::make_room(Connection& connection) {
    if (connection.begin == connection.end) connection.begin = connection.end = 0;
    if (connection.end < connection.capacity) return true;
    if (connection.begin > 0) {
        std::memmove(connection.input.get(), connection.input.get() + connection.begin,
                     connection.end - connection.begin);
        connection.end -= connection.begin;
        connection.begin = 0;
        return true;
    }
    if (connection.capacity >= kMaxHead) {  // handle_requests has already rejected such a head
        close_connection(connection);
        return false;
    }
    const std::size_t capacity = connection.capacity == 0 ? kInitialBuffer : connection.capacity * 2;
    auto grown = std::make_unique_for_overwrite<char[]>(capacity);
    if (connection.end > 0) std::memcpy(grown.get(), connection.input.get(), connection.end);
    connection.input = std::move(grown);
    connection.capacity = capacity;
    return true;
}

// Sends pending output. Returns true when all of it is sent and the connection stays open.
bool Server::flush(Connection& connection) {
    while (connection.sent < connection.output.size()) {
        const ssize_t sent = ::send(connection.fd, connection.output.data() + connection.sent,
                                    connection.output.size() - connection.sent, MSG_NOSIGNAL);
        if (sent >= 0) {
            connection.sent += static_cast<std::size_t>(sent);
        } else if (errno == EAGAIN) {
            return false;
        } else if (errno != EINTR) {
            close_connection(connection);
            return false;
        }
    }
    connection.output.clear();
    connection.sent = 0;
    if (connection.exit_after_flush) {
        say("hello_server pid=" + pid_text_ + " exiting with status 3 (GET /exit)");
        std::exit(3);
    }
    if (connection.close_after_flush) {
        // Closing with unread input makes the kernel send a reset, which can destroy the response before the client
        // reads it: when more input may follow, shut our side down and discard input until the peer closes.
        if (connection.rejected || connection.begin != connection.end || connection.body_left > 0) {
            ::shutdown(connection.fd, SHUT_WR);
            connection.lingering = true;
            linger(connection);
        } else {
            close_connection(connection);
        }
        return false;
    }
    return true;
}

void Server::linger(Connection& connection) {
    char discard[4096];
    for (;;) {
        const ssize_t received = ::recv(connection.fd, discard, sizeof discard, 0);
        if (received > 0 || (received < 0 && errno == EINTR)) continue;
        if (received < 0 && errno == EAGAIN) return;
        close_connection(connection);
        return;
    }
}

void Server::close_connection(Connection& connection) {
    if (!connection.open) return;
    ::close(connection.fd);  // also leaves the epoll set: nobody else holds this socket
    connection.open = false;
    connection.fd = -1;
    --open_connections_;
}

void usage_and_exit() {
    write_all(STDERR_FILENO,
              "usage: hello_server --listen HOST:PORT\n"
              "       LISTEN_FDS=N LISTEN_PID=<pid> hello_server   (systemd socket activation, sockets at fd 3...)\n"
              "       PREFORK_REUSEPORT=1 [HOST=0.0.0.0] PORT=N hello_server   (binds with SO_REUSEPORT)\n"
              "Answers every HTTP request with \"pid=<pid> slot=<PREFORK_SLOT>\"; GET /exit exits with status 3.\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);

    std::vector<std::string> listen_arguments;
    for (int i = 1; i < argc; ++i) {
        const std::string_view argument = argv[i];
        if (argument == "--listen" && i + 1 < argc) {
            listen_arguments.emplace_back(argv[++i]);
        } else if (argument.starts_with("--listen=")) {
            listen_arguments.emplace_back(argument.substr(std::string_view("--listen=").size()));
        } else {
            usage_and_exit();
        }
    }

    std::vector<Listener> listeners;
    std::string how;
    const char* listen_fds = std::getenv("LISTEN_FDS");
    const char* reuseport = std::getenv("PREFORK_REUSEPORT");
    if (listen_fds != nullptr) {
        listeners = adopt_listen_fds(listen_fds);
        how = "LISTEN_FDS=" + std::string(listen_fds);
    } else if (reuseport != nullptr && std::string_view(reuseport) == "1") {
        const char* host = std::getenv("HOST");
        const char* port = std::getenv("PORT");
        if (port == nullptr || *port == '\0') {
            write_all(STDERR_FILENO, "hello_server: PREFORK_REUSEPORT=1 needs PORT (and optionally HOST)\n");
            std::exit(2);
        }
        listeners.push_back(bind_listener(host != nullptr ? host : "", port, true));
        how = "reuseport " + describe_address(listeners.back().fd);
    } else if (!listen_arguments.empty()) {
        how = "listen";
        for (const std::string& spec : listen_arguments) {
            const std::size_t colon = spec.rfind(':');
            if (colon == std::string::npos || colon + 1 == spec.size()) usage_and_exit();
            listeners.push_back(bind_listener(spec.substr(0, colon), spec.substr(colon + 1), false));
            how += " " + describe_address(listeners.back().fd);
        }
    } else {
        usage_and_exit();
    }

    const std::string pid_text = std::to_string(::getpid());
    const char* slot_env = std::getenv("PREFORK_SLOT");
    const std::string slot = slot_env != nullptr && *slot_env != '\0' ? slot_env : "-";
    say("hello_server pid=" + pid_text + " slot=" + slot + " serving " + how);

    Server server(std::move(listeners), "pid=" + pid_text + " slot=" + slot + "\n", pid_text);
    return server.run();
}
