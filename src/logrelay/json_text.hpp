#pragma once
// JSON string bodies of json output: the escaper of a line's bytes, and its bulk form that formats a run of
// whole lines at once. Pure: no descriptors, no clock.

#include <cstddef>
#include <string>
#include <string_view>

#include "logrelay/byte_buffer.hpp"

namespace preforkctl::logrelay {

/// Appends `text` as a JSON string body: escapes quotes, backslashes, control bytes and DEL; each byte that
/// is not part of valid UTF-8 becomes U+FFFD. Runs of bytes that need none of this are copied whole.
void append_json_string(std::string& out, std::string_view text);
void append_json_string(ByteBuffer& out, std::string_view text);

/// The bulk form for json lines: for each complete line at the start of `bytes` that has at most `max_line`
/// bytes before its '\n', appends `prefix`, the line (without its '\n') as a JSON string body, and `suffix`.
/// Stops before the first line that is unterminated or longer; returns the number of bytes consumed and adds
/// the number of lines appended to `lines`.
std::size_t append_json_lines(ByteBuffer& out, std::string_view prefix, std::string_view suffix,
                              std::string_view bytes, std::size_t max_line, std::size_t& lines);
inline std::size_t append_json_lines(ByteBuffer& out, std::string_view prefix, std::string_view suffix,
                                     std::string_view bytes, std::size_t max_line) {
    std::size_t lines = 0;
    return append_json_lines(out, prefix, suffix, bytes, max_line, lines);
}

}  // namespace preforkctl::logrelay
