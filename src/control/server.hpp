#pragma once
// ControlServer: the unix control socket on the supervisor's event loop (SPEC §11). It accepts clients
// (root or preforkctl's own uid only), reads one request line at a time, hands each request to the
// supervisor and writes the answer, never blocking the loop: a request that is not valid gets an error (and
// the connection serves the next one), a line over kMaxRequestBytes gets an error and the client is dropped,
// one that sends nothing or never reads is dropped after kClientTimeout, and at most kMaxClients are
// served at once.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "control/protocol.hpp"
#include "control/reply.hpp"
#include "sys/result.hpp"

namespace boost::asio {
class io_context;
}

namespace preforkctl::control {

/// Clients served at once; more are answered with a refusal and closed.
constexpr std::size_t kMaxClients = 16;
/// A client must send its request, and read its answer, within this long.
constexpr std::chrono::seconds kClientTimeout{10};

/// Who is asking (SO_PEERCRED).
struct Peer {
    int pid = 0;
    unsigned uid = 0;
    int fd = -1;  // the connection (borrowed): `ctl upgrade` hands it to the next image, which answers on it
};

/// Sends the answer to one request. It may be called later (a rolling restart that is waited for), at most
/// once; it does nothing when the client has gone.
using Respond = std::function<void(const Reply&)>;
/// The supervisor's side: decides on a request and answers it, now or later.
using Handler = std::function<void(const Request&, const Peer&, Respond)>;

class ControlServer {
public:
    /// Listens on `path` (see sys::listen_control_socket: 0600 in a 0700 directory; a stale socket is
    /// replaced, a live one is an error with exit status 4).
    static Result<std::unique_ptr<ControlServer>> open(boost::asio::io_context& io, const std::string& path,
                                                       Handler handler);
    /// Serves on `fd`, a control socket already listening at `path` (handed over by an upgrade).
    static Result<std::unique_ptr<ControlServer>> adopt(boost::asio::io_context& io, const std::string& path, int fd,
                                                        Handler handler);
    /// Closes every connection and removes the socket file (if it is still this server's).
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    [[nodiscard]] const std::string& path() const;
    /// The listening socket (kept across an upgrade).
    [[nodiscard]] int descriptor() const;

    class Impl;

private:
    explicit ControlServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace preforkctl::control
