#pragma once
// Where the metrics endpoint listens (--metrics is parsed and checked with the --listen parser, in plan/). Pure.

#include <cstdint>
#include <string>

namespace preforkctl::metrics {

/// Where the metrics endpoint listens.
struct MetricsAddress {
    std::string host;        // numeric IPv4 or IPv6 literal, without brackets; "0.0.0.0" for ":PORT"
    std::uint16_t port = 0;  // 0 = ephemeral, chosen by the kernel at bind
};

/// "127.0.0.1:9100" or "[::1]:9100": how `address` is written in messages and URLs.
std::string format_metrics_address(const MetricsAddress& address);

}  // namespace preforkctl::metrics
