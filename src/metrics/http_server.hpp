#pragma once
// The HTTP endpoint of --metrics: GET /metrics on the caller's io_context, one thread, never blocking it.
// Beast stays inside http_server.cpp (it costs seconds per translation unit).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "metrics/address.hpp"
#include "sys/result.hpp"

namespace preforkctl::metrics {

/// What one client may cost the endpoint; the defaults are what preforkctl uses.
struct MetricsLimits {
    std::size_t max_connections = 16;           // connections beyond this are closed as soon as accepted
    std::size_t header_limit = 8 * 1024;        // bytes of request line and headers
    std::chrono::milliseconds timeout{10'000};  // to read one request, and again to write its response
};

/// Serves render()'s text at /metrics until destroyed.
class MetricsServer {
public:
    /// Binds `address` (SO_REUSEADDR, close-on-exec) and starts accepting on `io`. `render` is called once per
    /// GET or HEAD of /metrics, on `io`'s thread. A bind failure is "cannot serve metrics on HOST:PORT: why"
    /// with ExitCode::socket.
    static Result<std::unique_ptr<MetricsServer>> open(boost::asio::io_context& io, const MetricsAddress& address,
                                                       std::function<std::string()> render,
                                                       const MetricsLimits& limits = {});

    /// Serves on `fd`, a socket already listening (handed over by an upgrade).
    static Result<std::unique_ptr<MetricsServer>> adopt(boost::asio::io_context& io, int fd,
                                                        std::function<std::string()> render,
                                                        const MetricsLimits& limits = {});
    /// The listening socket (kept across an upgrade).
    [[nodiscard]] int descriptor() const;
    /// The address actually bound, port included: "127.0.0.1:9100", "[::1]:9100".
    [[nodiscard]] std::string address() const;

    /// Closes the listening socket and every connection; render is never called again. Handlers still queued
    /// on the io_context finish harmlessly.
    ~MetricsServer();

    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    struct State;  // the acceptor and the live connections; shared with their pending handlers

private:
    explicit MetricsServer(std::shared_ptr<State> state);
    std::shared_ptr<State> state_;
};

}  // namespace preforkctl::metrics
