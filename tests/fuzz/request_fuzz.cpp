// libFuzzer target for the control protocol's parsers, which read whatever a client sends: any bytes, as a
// request line and as the words of `ctl` split on spaces, must give a request or an error, never a crash, a
// leak or undefined behaviour. What parses must also survive its own encoding: encode_request() of it parses
// again to the same line (the client and the server agree on every request either can make).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/protocol.hpp"

namespace {

using preforkctl::control::encode_request;
using preforkctl::control::parse_request;
using preforkctl::control::Request;
using preforkctl::control::request_from_words;

// A request's line must be a fixed point: encoding what it parses to gives the same line.
void check_round_trip(const Request& request) {
    const std::string line = encode_request(request);
    const auto again = parse_request(line);
    if (!again || encode_request(*again) != line) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (const auto request = parse_request(bytes)) check_round_trip(*request);

    // As a shell would hand them to `ctl`: words between single spaces (empty words included).
    std::vector<std::string> words;
    for (std::size_t start = 0;;) {
        const std::size_t space = bytes.find(' ', start);
        words.emplace_back(bytes.substr(start, space == std::string_view::npos ? std::string_view::npos : space - start));
        if (space == std::string_view::npos) break;
        start = space + 1;
    }
    if (bytes.empty()) words.clear();
    if (const auto request = request_from_words(words)) check_round_trip(*request);
    return 0;
}
