#pragma once
// Parsing of --listen values: HOST:PORT, :PORT, [V6]:PORT, unix:/path, with ",name=,backlog=,mode=". Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sys/result.hpp"

namespace preforkctl::plan {

/// One listening address, as the user asked for it.
struct ListenSpec {
    enum class Kind { tcp, unix_path, inherited };
    Kind kind = Kind::tcp;
    std::string host;             // numeric IPv4/IPv6 literal; "0.0.0.0" for ":PORT"
    bool ipv6 = false;
    std::uint16_t port = 0;       // 0 = ephemeral, chosen by the kernel at bind
    std::string path;             // unix socket path
    std::string name;             // LISTEN_FDNAMES entry; default "http" ... see parse
    int backlog = 4096;
    std::optional<unsigned> mode; // unix socket file mode bits
    std::string text;             // the address part as written, for messages
    int inherited_fd = -1;        // Kind::inherited: the fd preforkctl got from systemd

    bool operator==(const ListenSpec&) const = default;
};

/// Parses one --listen value. Error messages name the problem: "invalid listen address 'x': ...".
Result<ListenSpec> parse_listen(std::string_view text);

/// "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock" for a spec, with `port` substituted.
std::string format_address(const ListenSpec& spec, std::uint16_t port);

}  // namespace preforkctl::plan
