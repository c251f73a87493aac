// libFuzzer target for the relay's framing and bulk formatting (LineFramer, ByteBuffer::append_prefixed_lines,
// append_json_lines), which see every byte a worker writes. The first two bytes choose --max-line and how the
// rest is cut into reads. Checked, beside the sanitizers:
// - every piece has at most max_line bytes and no '\n', and the pieces hold every other byte once, in order;
// - the bulk paths (the relay's hot path, which reads up to 15 bytes past lines and prefixes in 16-byte
//   blocks) write exactly what formatting line by line writes, in prefix and in json form;
// - the line count the bulk formatters hand back, with the pieces, is the number of lines written, and
//   consumed bytes less that count plus the pieces' bytes is the input less its newlines (Relay::counters()).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "logrelay/byte_buffer.hpp"
#include "logrelay/line_framer.hpp"
#include "logrelay/output.hpp"

namespace {

using namespace preforkctl::logrelay;

void check(bool condition) {
    if (!condition) __builtin_trap();
}

// The reads the input is cut into: lengths 1..256 from a small generator seeded by the input.
template <class Each>
void for_each_read(std::string_view bytes, std::uint8_t seed, Each&& each) {
    std::uint32_t state = static_cast<std::uint32_t>(seed) * 2654435761u + 1;
    while (!bytes.empty()) {
        state = state * 1103515245u + 12345u;
        const std::size_t length = std::min<std::size_t>(bytes.size(), 1 + (state >> 16) % 256);
        each(bytes.substr(0, length));
        bytes.remove_prefix(length);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t max_line = 1 + data[0] % 100;  // small limits reach the cuts often
    const std::uint8_t seed = data[1];
    const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
    const auto newlines = static_cast<std::size_t>(std::count(input.begin(), input.end(), '\n'));

    // One line at a time: the reference.
    LineFramer single(max_line);
    ByteBuffer single_prefix;
    ByteBuffer single_json;
    std::string text;  // the pieces' bytes, concatenated
    std::size_t pieces = 0;
    const LineStyle prefix_style{"w.0 | ", "w.0 + ", "\n", false};
    const LineStyle json_style{"{\"line\":\"", "{\"continuation\":true,\"line\":\"", "\"}\n", true};
    const auto take = [&](const Line& line) {
        check(line.text.size() <= max_line);
        check(line.text.find('\n') == std::string_view::npos);
        text.append(line.text);
        ++pieces;
        append_styled(single_prefix, prefix_style, line);
        append_styled(single_json, json_style, line);
    };
    for_each_read(input, seed, [&](std::string_view read) { single.feed(read, take); });
    single.flush(take);
    std::string expected;
    for (const char c : input) {
        if (c != '\n') expected += c;
    }
    check(text == expected);

    // In bulk, as the relay's hot path does it, counting as Relay::counters() does.
    for (const LineStyle* style : {&prefix_style, &json_style}) {
        LineFramer bulk(max_line);
        ByteBuffer out;
        std::size_t run_lines = 0;
        std::size_t run_bytes = 0;
        std::size_t bulk_pieces = 0;
        std::size_t piece_bytes = 0;
        const auto piece = [&](const Line& line) {
            append_styled(out, *style, line);
            ++bulk_pieces;
            piece_bytes += line.text.size();
        };
        for_each_read(input, seed, [&](std::string_view read) {
            bulk.feed_bulk(
                read, SteadyTime{},
                [&](std::string_view run) {
                    const std::size_t used = append_styled_lines(out, *style, run, max_line, run_lines);
                    run_bytes += used;
                    return used;
                },
                piece);
        });
        bulk.flush(piece);
        check(out.view() == (style->json ? single_json : single_prefix).view());
        check(run_lines + bulk_pieces == pieces);
        check(run_bytes - run_lines + piece_bytes == input.size() - newlines);
    }
    return 0;
}
