#include "logrelay/json_text.hpp"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace preforkctl::logrelay {

namespace {

// A byte that a JSON string body cannot carry as it is (or, from 0x80 up, only as part of valid UTF-8).
bool needs_care(unsigned char c) { return c < 0x20 || c >= 0x7F || c == '"' || c == '\\'; }

#if defined(__SSE2__)
// One bit per byte of the 16 at `at` that needs care. The signed compare with 0x20 also catches 0x80-0xFF.
unsigned care_mask(const char* at) {
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i low = _mm_cmplt_epi8(block, _mm_set1_epi8(0x20));
    const __m128i del = _mm_cmpeq_epi8(block, _mm_set1_epi8(0x7F));
    const __m128i quote = _mm_cmpeq_epi8(block, _mm_set1_epi8('"'));
    const __m128i backslash = _mm_cmpeq_epi8(block, _mm_set1_epi8('\\'));
    return static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(low, del), _mm_or_si128(quote, backslash))));
}
#endif

// The number of bytes at the start of `text` that go out as they are.
std::size_t plain_run(std::string_view text) {
    std::size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= text.size(); i += 16) {
        if (const unsigned mask = care_mask(text.data() + i); mask != 0) {
            return i + static_cast<std::size_t>(__builtin_ctz(mask));
        }
    }
#endif
    while (i < text.size() && !needs_care(static_cast<unsigned char>(text[i]))) ++i;
    return i;
}

// Length of the valid UTF-8 sequence at the start of `s`, or 0 when it is not valid.
std::size_t utf8_sequence_length(std::string_view s) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = byte(0);
    std::size_t length = 0;
    unsigned min_value = 0;
    unsigned value = 0;
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) { length = 2; value = lead & 0x1Fu; min_value = 0x80; }
    else if ((lead & 0xF0) == 0xE0) { length = 3; value = lead & 0x0Fu; min_value = 0x800; }
    else if ((lead & 0xF8) == 0xF0) { length = 4; value = lead & 0x07u; min_value = 0x10000; }
    else return 0;
    if (s.size() < length) return 0;
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80) return 0;
        value = (value << 6) | (byte(i) & 0x3Fu);
    }
    if (value < min_value || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
    return length;
}

template <class Out>
void append_json_text(Out& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    while (!text.empty()) {
        if (const std::size_t plain = plain_run(text); plain > 0) {
            out.append(text.substr(0, plain));
            text.remove_prefix(plain);
            if (text.empty()) return;
        }
        const auto c = static_cast<unsigned char>(text.front());
        std::size_t used = 1;
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        } else if (const std::size_t length = utf8_sequence_length(text); length > 0) {
            out.append(text.substr(0, length));
            used = length;
        } else {
            out += "\\ufffd";
        }
        text.remove_prefix(used);
    }
}

void append_json_line(ByteBuffer& out, std::string_view prefix, std::string_view line, std::string_view suffix,
                      bool needs_escaping) {
    if (needs_escaping) {
        out.append(prefix);
        append_json_text(out, line);
        out.append(suffix);
    } else {
        out.append_parts(prefix, line, suffix);
    }
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) { append_json_text(out, text); }
void append_json_string(ByteBuffer& out, std::string_view text) { append_json_text(out, text); }

std::size_t append_json_lines(ByteBuffer& out, std::string_view prefix, std::string_view suffix,
                              std::string_view bytes, std::size_t max_line, std::size_t& lines) {
    const char* const begin = bytes.data();
    const char* const end = begin + bytes.size();
    const char* line = begin;     // start of the next line to append
    const char* scanned = begin;  // newlines before this point have been found
    // Counted in a local: `lines` could alias the bytes written, which would force a store per line.
    std::size_t count = 0;
    const auto consumed = [&] {
        lines += count;
        return static_cast<std::size_t>(line - begin);
    };
#if defined(__SSE2__)
    // As ByteBuffer::append_prefixed_lines: newlines are found 64 bytes at a time, and in the same pass the
    // bytes that need escaping, so that a line without any (the common log line) is copied whole, in 16-byte
    // blocks: prefix and suffix from padded copies, the line from the input when 16 bytes follow its end.
    constexpr std::size_t kPadded = 256;
    alignas(16) char prefix16[kPadded + 16] = {};
    alignas(16) char suffix16[32] = {};
    const bool blocks = prefix.size() <= kPadded && suffix.size() <= 16;
    if (blocks) {
        std::memcpy(prefix16, prefix.data(), prefix.size());
        std::memcpy(suffix16, suffix.data(), suffix.size());
    }
    bool dirty = false;  // the line being scanned has such a byte in a block before `scanned`
    for (; end - scanned >= 64; scanned += 64) {
        // Written out four times rather than as a loop: GCC at -O2 keeps the loop, with a variable shift.
        const auto newline_mask = [](const char* at) {
            const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
            return static_cast<std::uint64_t>(
                static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(block, _mm_set1_epi8('\n')))));
        };
        std::uint64_t newlines = newline_mask(scanned) | newline_mask(scanned + 16) << 16 |
                                 newline_mask(scanned + 32) << 32 | newline_mask(scanned + 48) << 48;
        std::uint64_t care = static_cast<std::uint64_t>(care_mask(scanned)) |
                             static_cast<std::uint64_t>(care_mask(scanned + 16)) << 16 |
                             static_cast<std::uint64_t>(care_mask(scanned + 32)) << 32 |
                             static_cast<std::uint64_t>(care_mask(scanned + 48)) << 48;
        care &= ~newlines;
        for (; newlines != 0; newlines &= newlines - 1) {
            const std::uint64_t bit = newlines & (~newlines + 1);
            const char* at = scanned + __builtin_ctzll(newlines);
            const auto length = static_cast<std::size_t>(at - line);
            if (length > max_line) return consumed();
            const bool needs_escaping = dirty || (care & (bit - 1)) != 0;
            if (blocks && !needs_escaping && end - at > 16) {
                out.append_parts_in_blocks(std::string_view(prefix16, prefix.size()), std::string_view(line, length),
                                           std::string_view(suffix16, suffix.size()));
            } else {
                append_json_line(out, prefix, std::string_view(line, length), suffix, needs_escaping);
            }
            care &= ~(bit | (bit - 1));
            dirty = false;
            line = at + 1;
            ++count;
        }
        dirty = dirty || care != 0;
        if (static_cast<std::size_t>(scanned + 64 - line) > max_line + 1) {
            return consumed();  // a line too long for this path
        }
    }
#endif
    if (scanned < line) scanned = line;
    while (scanned != end) {
        const auto pending = static_cast<std::size_t>(scanned - line);  // bytes of this line without '\n'
        const std::size_t window = std::min(static_cast<std::size_t>(end - scanned), max_line + 1 - pending);
        const void* found = std::memchr(scanned, '\n', window);
        if (found == nullptr) break;
        const char* at = static_cast<const char*>(found);
        out.append(prefix);
        append_json_text(out, std::string_view(line, static_cast<std::size_t>(at - line)));
        out.append(suffix);
        line = scanned = at + 1;
        ++count;
    }
    return consumed();
}

}  // namespace preforkctl::logrelay
