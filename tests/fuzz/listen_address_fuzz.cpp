// libFuzzer target for --listen values (plan::parse_listen), which come from the command line, a config file
// and `ctl` reloads: any bytes must give a ListenSpec or an error, never a crash or undefined behaviour. What
// parses must survive its own formatting: format_address() of it, with its options written back, parses to
// the same spec (only `text`, the address as written, becomes the formatted one).
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "plan/listen_address.hpp"

namespace {

using preforkctl::plan::format_address;
using preforkctl::plan::ListenSpec;
using preforkctl::plan::parse_listen;

void check(bool condition) {
    if (!condition) __builtin_trap();
}

// The value --listen takes for `spec`: its address, then every option parse_listen() reads.
std::string listen_value(const ListenSpec& spec) {
    std::string value = format_address(spec, spec.port);
    value += ",name=";
    value += spec.name;
    value += ",backlog=";
    value += std::to_string(spec.backlog);
    if (spec.mode) {
        char octal[8] = {};
        const auto written = std::to_chars(octal, octal + sizeof octal, *spec.mode, 8);
        value += ",mode=0";
        value.append(octal, written.ptr);
    }
    return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto spec = parse_listen(bytes);
    if (!spec) return 0;
    check(spec->kind != ListenSpec::Kind::inherited);  // only systemd's sockets are inherited, never parsed

    const std::string value = listen_value(*spec);
    const auto again = parse_listen(value);
    check(again.ok());
    ListenSpec expected = *spec;
    expected.text = format_address(*spec, spec->port);
    check(*again == expected);
    check(listen_value(*again) == value);
    return 0;
}
