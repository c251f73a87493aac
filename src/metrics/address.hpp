#pragma once
// Parsing of the --metrics value: HOST:PORT, :PORT, [V6]:PORT. Pure.

#include <cstdint>
#include <string>
#include <string_view>

#include "sys/result.hpp"

namespace preforkctl::metrics {

/// Where the metrics endpoint listens.
struct MetricsAddress {
    std::string host;        // numeric IPv4 or IPv6 literal, without brackets; "0.0.0.0" for ":PORT"
    std::uint16_t port = 0;  // 0 = ephemeral, chosen by the kernel at bind
};

/// Parses a --metrics value; errors are one sentence naming the option, with ExitCode::usage.
Result<MetricsAddress> parse_metrics_address(std::string_view text);

/// "127.0.0.1:9100" or "[::1]:9100": how `address` is written in messages and URLs.
std::string format_metrics_address(const MetricsAddress& address);

}  // namespace preforkctl::metrics
