// libFuzzer target for the relay's JSON string escaper (logrelay::append_json_string), which writes every
// byte a worker prints into --log-format json lines. Checked, beside the sanitizers, for any bytes:
// - the output, between quotes, is a JSON string that nlohmann-json parses, with no raw control byte or DEL;
// - it decodes to the input with each byte that does not start a valid UTF-8 sequence replaced by U+FFFD, so
//   valid UTF-8 comes back unchanged;
// - the std::string and ByteBuffer forms write the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "logrelay/byte_buffer.hpp"
#include "logrelay/json_text.hpp"

namespace {

using nlohmann::json;
using preforkctl::logrelay::append_json_string;
using preforkctl::logrelay::ByteBuffer;

void check(bool condition) {
    if (!condition) __builtin_trap();
}

// nlohmann-json's own UTF-8 check, so that the reference below does not share the escaper's: dumping drops
// invalid bytes with `ignore` and marks them with `replace`, so the two dumps differ exactly when there are any.
bool is_valid_utf8(std::string_view bytes) {
    const json text = std::string(bytes);
    return text.dump(-1, ' ', false, json::error_handler_t::ignore) ==
           text.dump(-1, ' ', false, json::error_handler_t::replace);
}

// What the escaped text must decode to: the input with each byte that starts no valid UTF-8 sequence replaced
// by U+FFFD. The sequence at a byte is its shortest valid prefix (of at most 4 bytes).
std::string expected_text(std::string_view bytes) {
    if (is_valid_utf8(bytes)) return std::string(bytes);
    std::string expected;
    while (!bytes.empty()) {
        std::size_t length = 1;
        if (static_cast<unsigned char>(bytes.front()) >= 0x80) {
            length = 2;
            while (length <= 4 && (length > bytes.size() || !is_valid_utf8(bytes.substr(0, length)))) ++length;
        }
        if (length > 4) {
            expected += "\xef\xbf\xbd";
            length = 1;
        } else {
            expected.append(bytes.substr(0, length));
        }
        bytes.remove_prefix(length);
    }
    return expected;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::string escaped;
    append_json_string(escaped, bytes);
    ByteBuffer buffer;
    append_json_string(buffer, bytes);
    check(buffer.view() == escaped);
    for (const char c : escaped) {
        check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
    }

    std::string quoted = "\"";
    quoted += escaped;
    quoted += '"';
    const json parsed = json::parse(quoted, nullptr, false);
    check(parsed.is_string());
    check(parsed.get<std::string>() == expected_text(bytes));
    return 0;
}
