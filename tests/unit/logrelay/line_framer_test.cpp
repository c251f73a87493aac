#include "logrelay/line_framer.hpp"

#include <gtest/gtest.h>

#include "logrelay/output.hpp"

using namespace preforkctl::logrelay;

namespace {

struct Collected {
    std::vector<std::string> lines;
    std::vector<bool> continuation;
};

Collected frame(std::size_t max_line, const std::vector<std::string>& chunks, bool flush = false) {
    LineFramer framer(max_line);
    Collected got;
    auto emit = [&](const Line& line) {
        got.lines.emplace_back(line.text);
        got.continuation.push_back(line.continuation);
    };
    for (const auto& chunk : chunks) framer.feed(chunk, emit);
    if (flush) framer.flush(emit);
    return got;
}

}  // namespace

TEST(LineFramer, EmitsWholeLinesAcrossChunkBoundaries) {
    const auto got = frame(100, {"hel", "lo\nwor", "ld\n", "tail"});
    EXPECT_EQ(got.lines, (std::vector<std::string>{"hello", "world"}));
}

TEST(LineFramer, KeepsCarriageReturnsAndNulBytes) {
    const auto got = frame(100, {std::string("a\r\nb\0c\n", 7)});
    EXPECT_EQ(got.lines, (std::vector<std::string>{"a\r", std::string("b\0c", 3)}));
}

TEST(LineFramer, FlushesAnUnterminatedLastLine) {
    EXPECT_EQ(frame(100, {"done\nno-newline"}, true).lines, (std::vector<std::string>{"done", "no-newline"}));
    EXPECT_TRUE(frame(100, {"done\n"}, true).lines.size() == 1) << "nothing extra when the line was complete";
}

TEST(LineFramer, SplitsLongLinesAtTheLimitAndMarksContinuations) {
    const auto got = frame(4, {"abcdefghij\nxy\n"});
    EXPECT_EQ(got.lines, (std::vector<std::string>{"abcd", "efgh", "ij", "xy"}));
    EXPECT_EQ(got.continuation, (std::vector<bool>{false, true, true, false}));
}

TEST(LineFramer, ALineOfExactlyTheLimitIsNotSplit) {
    const auto got = frame(4, {"abcd\n"});
    EXPECT_EQ(got.lines, (std::vector<std::string>{"abcd"}));
}

TEST(LineFramer, HugeLineFedInSmallChunksStaysBoundedAndArrivesWhole) {
    LineFramer framer(1024);
    std::size_t total = 0;
    std::size_t longest = 0;
    auto emit = [&](const Line& line) {
        total += line.text.size();
        longest = std::max(longest, line.text.size());
    };
    const std::string chunk(1000, 'x');
    for (int i = 0; i < 10'000; ++i) framer.feed(chunk, emit);
    framer.feed("\n", emit);
    EXPECT_EQ(total, 10'000'000u);
    EXPECT_LE(longest, 1024u);
}

TEST(JsonString, EscapesControlBytesQuotesAndInvalidUtf8Predictably) {
    std::string out;
    append_json_string(out, std::string("a\"b\\c\x01\t\xff\xc3\xa9", 10));
    EXPECT_EQ(out, "a\\\"b\\\\c\\u0001\\t\\ufffd\xc3\xa9");
    out.clear();
    append_json_string(out, "\xe2\x82");  // a truncated sequence: each byte replaced
    EXPECT_EQ(out, "\\ufffd\\ufffd");
    out.clear();
    append_json_string(out, "\xed\xa0\x80");  // a UTF-16 surrogate is not valid UTF-8
    EXPECT_EQ(out, "\\ufffd\\ufffd\\ufffd");
}
