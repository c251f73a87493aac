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

TEST(LineFramer, EmptyLinesAreLinesToo) {
    EXPECT_EQ(frame(100, {"a\n\nb\n"}).lines, (std::vector<std::string>{"a", "", "b"}));
}

TEST(LineFramer, AnUnterminatedLineIsShownOnceItWaitedPastTheCutoffAndItsRestIsAContinuation) {
    using namespace std::chrono_literals;
    LineFramer framer(100);
    Collected got;
    auto emit = [&](const Line& line) {
        got.lines.emplace_back(line.text);
        got.continuation.push_back(line.continuation);
    };
    const SteadyTime start{};
    framer.feed("Enter: ", start + 10ms, emit);
    framer.feed("name", start + 300ms, emit);  // the wait counts from the first byte
    EXPECT_EQ(framer.partial_since(), start + 10ms);
    framer.flush_if_waiting_since(start + 9ms, emit);
    EXPECT_TRUE(got.lines.empty()) << "not yet waiting long enough";
    framer.flush_if_waiting_since(start + 10ms, emit);
    EXPECT_FALSE(framer.has_partial());
    framer.feed("d\nnext\n", start + 900ms, emit);
    EXPECT_EQ(got.lines, (std::vector<std::string>{"Enter: name", "d", "next"}));
    EXPECT_EQ(got.continuation, (std::vector<bool>{false, true, false}));
}

TEST(LineFramer, ANewlineAloneAfterATimedOutPieceAddsNoEmptyContinuation) {
    LineFramer framer(100);
    std::vector<std::string> lines;
    auto emit = [&](const Line& line) { lines.emplace_back(line.text); };
    framer.feed("progress...", SteadyTime{}, emit);
    framer.flush_if_waiting_since(SteadyTime{}, emit);
    framer.feed("\nnext\n", SteadyTime{}, emit);
    EXPECT_EQ(lines, (std::vector<std::string>{"progress...", "next"}));
}

TEST(LineFramer, RestartingThePartialClockForgivesTimeSpentUnread) {
    using namespace std::chrono_literals;
    LineFramer framer(100);
    framer.feed("abc", SteadyTime{}, [](const Line&) {});
    framer.restart_partial_clock(SteadyTime{} + 5s);
    EXPECT_EQ(framer.partial_since(), SteadyTime{} + 5s);
    int emitted = 0;
    framer.flush_if_waiting_since(SteadyTime{} + 4s, [&](const Line&) { ++emitted; });
    EXPECT_EQ(emitted, 0);
}

TEST(LineFramer, FlushAtEofEndsAContinuationSoTheNextWorkerStartsAFreshLine) {
    LineFramer framer(4);
    std::vector<bool> continuation;
    auto emit = [&](const Line& line) { continuation.push_back(line.continuation); };
    framer.feed("abcdef", emit);  // "abcd" emitted, "ef" continues it
    framer.flush(emit);           // the worker died: "ef" is emitted
    framer.feed("new\n", emit);
    EXPECT_EQ(continuation, (std::vector<bool>{false, true, false}));
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
