#include "metrics/address.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace preforkctl::metrics {

namespace {

bool is_ipv4(const std::string& host) {
    in_addr addr{};
    return ::inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& host) {
    in6_addr addr{};
    return ::inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

bool parse_port(std::string_view text, std::uint16_t& port) {
    if (text.empty()) return false;
    const auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    return ec == std::errc{} && rest == text.data() + text.size();
}

Error usage_error(std::string_view text, const std::string& problem) {
    return Error{"--metrics: \"" + std::string(text) + "\" " + problem, 0, ExitCode::usage};
}

}  // namespace

Result<MetricsAddress> parse_metrics_address(std::string_view text) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return usage_error(text, "is not HOST:PORT");
    MetricsAddress address;
    if (!parse_port(text.substr(colon + 1), address.port)) {
        return usage_error(text, "is not HOST:PORT with a port from 0 to 65535");
    }
    const std::string_view host = text.substr(0, colon);
    if (host.empty()) {
        // ":PORT" means every interface, as node_exporter's --web.listen-address and our own --listen read it.
        address.host = "0.0.0.0";
    } else if (host.starts_with('[')) {
        address.host = std::string(host.substr(1, host.size() - 1 - (host.ends_with(']') ? 1 : 0)));
        if (!host.ends_with(']') || !is_ipv6(address.host)) {
            return usage_error(text, "is not [IPV6]:PORT with a numeric IPv6 address in the brackets");
        }
    } else {
        address.host = std::string(host);
        if (is_ipv6(address.host)) {
            return usage_error(text, "has an IPv6 address without brackets; write [IPV6]:PORT");
        }
        if (!is_ipv4(address.host)) {
            return usage_error(text, "is not HOST:PORT with a numeric IPv4 address as HOST");
        }
    }
    return address;
}

std::string format_metrics_address(const MetricsAddress& address) {
    const bool ipv6 = address.host.find(':') != std::string::npos;
    const std::string host = ipv6 ? "[" + address.host + "]" : address.host;
    return host + ":" + std::to_string(address.port);
}

}  // namespace preforkctl::metrics
