#include "plan/listen_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <vector>

namespace preforkctl::plan {

namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (;;) {
        const std::size_t at = text.find(separator, start);
        parts.push_back(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos) {
            return parts;
        }
        start = at + 1;
    }
}

template <class Int>
bool parse_number(std::string_view text, Int& out, int base = 10) {
    auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
    return ec == std::errc{} && rest == text.data() + text.size() && !text.empty();
}

bool is_ipv4(const std::string& host) {
    in_addr addr{};
    return ::inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& host) {
    in6_addr addr{};
    return ::inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

}  // namespace

Result<ListenSpec> parse_listen(std::string_view text) {
    const auto parts = split(text, ',');
    ListenSpec spec;
    spec.text = std::string(parts.front());
    spec.name = "unknown";  // what sd_listen_fds_with_names() reports for an unnamed socket
    auto bad = [&](const std::string& why) {
        return Error{"invalid listen address '" + std::string(text) + "': " + why};
    };

    const std::string_view address = parts.front();
    if (address.starts_with("unix:")) {
        spec.kind = ListenSpec::Kind::unix_path;
        spec.path = std::string(address.substr(5));
        if (spec.path.empty()) {
            return bad("empty unix socket path");
        }
        if (spec.path.size() >= 108) {  // sizeof(sockaddr_un::sun_path)
            return bad("unix socket path is longer than 107 bytes");
        }
    } else {
        const std::size_t colon = address.rfind(':');
        if (colon == std::string_view::npos) {
            return bad("expected HOST:PORT, :PORT, [V6]:PORT or unix:/path");
        }
        std::string_view host = address.substr(0, colon);
        if (!parse_number(address.substr(colon + 1), spec.port)) {
            return bad("port must be a number from 0 to 65535");
        }
        if (host.starts_with('[')) {
            if (!host.ends_with(']')) {
                return bad("missing ']' after the IPv6 address");
            }
            spec.host = std::string(host.substr(1, host.size() - 2));
            spec.ipv6 = true;
            if (!is_ipv6(spec.host)) {
                return bad("'" + spec.host + "' is not an IPv6 address");
            }
        } else if (host.empty() || host == "*") {
            spec.host = "0.0.0.0";
        } else if (host == "localhost") {
            spec.host = "127.0.0.1";
        } else {
            spec.host = std::string(host);
            if (!is_ipv4(spec.host)) {
                return bad(is_ipv6(spec.host) ? "write IPv6 addresses in brackets: [" + spec.host + "]:PORT"
                                              : "'" + spec.host + "' is not a numeric IPv4 address");
            }
        }
    }

    for (std::size_t i = 1; i < parts.size(); ++i) {
        const std::string_view option = parts[i];
        const std::size_t eq = option.find('=');
        if (eq == std::string_view::npos) {
            return bad("option '" + std::string(option) + "' needs a value (name=, backlog=, mode=)");
        }
        const std::string_view key = option.substr(0, eq);
        const std::string_view value = option.substr(eq + 1);
        if (key == "name") {
            // systemd's rule for LISTEN_FDNAMES and FDNAME=: what it would refuse to store or pass on.
            const bool printable = std::all_of(value.begin(), value.end(),
                                               [](char c) { return c >= ' ' && c < 127 && c != ':'; });
            if (value.empty() || value.size() > 255 || !printable) {
                return bad("name must be 1 to 255 printable ASCII characters other than ':'");
            }
            spec.name = std::string(value);
        } else if (key == "backlog") {
            if (!parse_number(value, spec.backlog) || spec.backlog < 1) {
                return bad("backlog must be a positive number");
            }
        } else if (key == "mode") {
            unsigned mode = 0;
            if (spec.kind != ListenSpec::Kind::unix_path) {
                return bad("mode= applies to unix sockets only");
            }
            if (!parse_number(value, mode, 8) || mode > 07777) {
                return bad("mode must be octal, e.g. 0660");
            }
            spec.mode = mode;
        } else {
            return bad("unknown option '" + std::string(key) + "' (name=, backlog=, mode=)");
        }
    }
    return spec;
}

std::string format_address(const ListenSpec& spec, std::uint16_t port) {
    if (spec.kind == ListenSpec::Kind::unix_path) {
        return "unix:" + spec.path;
    }
    if (spec.kind == ListenSpec::Kind::inherited) {
        return spec.text;
    }
    if (spec.ipv6) {
        return "[" + spec.host + "]:" + std::to_string(port);
    }
    return spec.host + ":" + std::to_string(port);
}

}  // namespace preforkctl::plan
