// The fast JSON escaper and its bulk form against the plain byte-at-a-time escaper they replaced.
#include "logrelay/json_text.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "logrelay/line_framer.hpp"
#include "logrelay/output.hpp"

using namespace preforkctl::logrelay;

namespace {

// The escaper json output had before the fast one, kept as the reference: one byte at a time.
std::size_t reference_utf8_length(std::string_view s) {
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

std::string reference_escape(std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    while (!text.empty()) {
        const auto c = static_cast<unsigned char>(text.front());
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            out += static_cast<char>(c);
        } else if (c == '"' || c == '\\') {
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
        } else {
            const std::size_t length = reference_utf8_length(text);
            if (length == 0) {
                out += "\\ufffd";
            } else {
                out.append(text.substr(0, length));
                text.remove_prefix(length);
                continue;
            }
        }
        text.remove_prefix(1);
    }
    return out;
}

// Random text: mostly plain ASCII (log lines), with quotes, backslashes, control bytes, DEL, valid UTF-8
// of every length, truncated and overlong sequences, surrogates and stray continuation bytes.
std::string random_text(std::mt19937& random, std::size_t size) {
    const auto pick = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(random); };
    static const std::string pieces[] = {"\"", "\\", "\t", "\r", std::string(1, '\0'), "\x01", "\x1f", "\x7f",
                                         "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xe2\x82", "\xc0\xaf",
                                         "\xed\xa0\x80", "\x80", "\xff", "\xf4\x90\x80\x80", "\n"};
    std::string text;
    while (text.size() < size) {
        const int kind = pick(0, 9);
        if (kind < 6) {
            for (int n = pick(1, 40); n > 0; --n) text += static_cast<char>(pick(0x20, 0x7e));
        } else if (kind < 8) {
            text += pieces[pick(0, static_cast<int>(std::size(pieces)) - 1)];
        } else {
            text += static_cast<char>(pick(0, 255));
        }
    }
    return text;
}

}  // namespace

TEST(JsonString, TheFastEscaperWritesExactlyWhatTheByteAtATimeEscaperWrites) {
    std::mt19937 random(7);
    for (int round = 0; round < 2000; ++round) {
        const std::string text = random_text(random, std::uniform_int_distribution<std::size_t>(0, 300)(random));
        std::string fast;
        append_json_string(fast, text);
        ASSERT_EQ(fast, reference_escape(text)) << "round " << round;
        ByteBuffer buffer;
        append_json_string(buffer, text);
        ASSERT_EQ(buffer.view(), fast);
    }
    for (int c = 0; c < 256; ++c) {  // every byte alone and inside a 16-byte block
        const std::string one(1, static_cast<char>(c));
        const std::string block = "0123456" + one + "89abcdefghijklmnop";
        std::string fast;
        append_json_string(fast, one + block);
        EXPECT_EQ(fast, reference_escape(one + block)) << c;
    }
}

// json lines formatted in bulk (append_json_lines through LineFramer::feed_bulk, the relay's hot path) are the
// lines that LineFormatter::append writes one by one, whatever the bytes, chunks and --max-line.
TEST(JsonString, BulkJsonLinesAreExactlyTheLinesFormattedOneByOne) {
    std::mt19937 random(11);
    const auto pick = [&](std::size_t low, std::size_t high) {
        return std::uniform_int_distribution<std::size_t>(low, high)(random);
    };
    for (const Format format : {Format::json, Format::prefix}) {
        for (int round = 0; round < 300; ++round) {
            const std::size_t max_line = pick(16, 150);
            std::string bytes;
            while (bytes.size() < 4000) {
                const std::size_t length = pick(0, 4) == 0 ? pick(max_line - 3, max_line + 3) : pick(0, 90);
                bytes += pick(0, 3) == 0 ? random_text(random, length)
                                         : std::string(length, static_cast<char>('a' + pick(0, 25)));
                if (pick(0, 30) != 0) bytes += '\n';
            }
            const OutputOptions options{format, "web", 12, format == Format::prefix, false, false};
            LineFormatter bulk_formatter(options);
            LineFormatter reference_formatter(options);
            LineFramer bulk(max_line);
            LineFramer reference(max_line);
            ByteBuffer got;
            ByteBuffer expected;
            std::string_view rest = bytes;
            int chunk_number = 0;
            while (!rest.empty()) {
                const std::string_view chunk = rest.substr(0, pick(1, 700));
                // The timestamp and the pid change between reads, as they do in the relay.
                const std::string timestamp = "2026-01-02T03:04:05." + std::to_string(100 + chunk_number / 3) + "Z";
                const int pid = 1000 + chunk_number / 5;
                const LineStyle style = bulk_formatter.style(3, Stream::err, pid, timestamp);
                bulk.feed_bulk(
                    chunk, SteadyTime{},
                    [&](std::string_view run) { return append_styled_lines(got, style, run, max_line); },
                    [&](const Line& line) { append_styled(got, style, line); });
                reference.feed(chunk, SteadyTime{}, [&](const Line& line) {
                    reference_formatter.append(expected, 3, Stream::err, pid, line, timestamp);
                });
                rest.remove_prefix(chunk.size());
                ++chunk_number;
            }
            ASSERT_EQ(got.view(), expected.view()) << "round " << round << " max_line " << max_line;
            EXPECT_EQ(bulk.has_partial(), reference.has_partial());
        }
    }
}

TEST(JsonString, BulkJsonLinesStopBeforeAnUnterminatedOrTooLongLine) {
    ByteBuffer out;
    const std::string bytes = std::string(70, 'a') + "\n\"q\"\n" + std::string(101, 'c') + "\nrest\n";
    EXPECT_EQ(append_json_lines(out, "<", ">\n", bytes, 100), 75u);
    EXPECT_EQ(out.view(), "<" + std::string(70, 'a') + ">\n<\\\"q\\\">\n");
    out.clear();
    EXPECT_EQ(append_json_lines(out, "<", ">\n", "tail", 100), 0u);
    EXPECT_TRUE(out.empty());
}
