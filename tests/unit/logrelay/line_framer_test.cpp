#include "logrelay/line_framer.hpp"

#include <gtest/gtest.h>

#include <random>

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

namespace {

// What feed_prefixed must produce: feed() with one append_line per line.
std::string prefixed_by_lines(LineFramer& framer, std::string_view bytes, std::string_view prefix,
                              std::string_view continuation_prefix) {
    ByteBuffer out;
    framer.feed(bytes, SteadyTime{}, [&](const Line& line) {
        out.append_line(line.continuation ? continuation_prefix : prefix, line.text);
    });
    return std::string(out.view());
}

}  // namespace

TEST(ByteBuffer, AppendsPrefixedWholeLinesAndStopsAtTheUnterminatedTail) {
    ByteBuffer out;
    const std::string bytes = std::string(70, 'a') + "\n\nb\n" + std::string(100, 'c') + "\ntail";
    const std::size_t used = out.append_prefixed_lines("p| ", bytes, 100);
    EXPECT_EQ(used, bytes.size() - 4);
    EXPECT_EQ(out.view(), "p| " + std::string(70, 'a') + "\np| \np| b\np| " + std::string(100, 'c') + "\n");
}

TEST(ByteBuffer, LeavesALineLongerThanTheLimitToTheFramer) {
    for (const std::size_t before : {0u, 1u, 63u, 64u, 65u, 101u}) {
        ByteBuffer out;
        const std::string head = before > 0 ? std::string(before - 1, 'h') + "\n" : "";
        const std::string bytes = head + std::string(101, 'x') + "\nafter\n" + std::string(64, 'y');
        EXPECT_EQ(out.append_prefixed_lines("> ", bytes, 100), head.size()) << before;
        EXPECT_EQ(out.size(), head.empty() ? 0 : head.size() + 2) << before;
    }
}

TEST(LineFramer, FeedPrefixedGivesTheSameOutputAsLineByLineFormattingForAnyBytesAndChunks) {
    std::mt19937 random(42);
    const auto pick = [&](std::size_t low, std::size_t high) {
        return std::uniform_int_distribution<std::size_t>(low, high)(random);
    };
    // Raw (no prefix), a short prefix (the SIMD copy), and one longer than 16 bytes (a coloured prefix).
    const std::string prefixes[][2] = {
        {"", ""}, {"w.3  | ", "w.3  + "}, {"\033[36mname.12 | \033[0m", "\033[36m+\033[0m"}};
    for (int round = 0; round < 300; ++round) {
        // Lines of every length around the limit and the 16/64-byte block sizes, sometimes without a newline.
        const std::size_t max_line = pick(16, 150);
        std::string bytes;
        while (bytes.size() < 4000) {
            const std::size_t length = pick(0, 4) == 0 ? pick(max_line - 3, max_line + 3) : pick(0, 80);
            for (std::size_t i = 0; i < length; ++i)
                bytes += pick(0, 20) == 0 ? '\r' : static_cast<char>('a' + pick(0, 25));
            if (pick(0, 30) != 0) bytes += '\n';
        }
        for (const auto& prefix : prefixes) {
            LineFramer bulk(max_line);
            LineFramer reference(max_line);
            ByteBuffer got;
            std::string expected;
            std::string_view rest = bytes;
            while (!rest.empty()) {
                const std::string_view chunk = rest.substr(0, pick(1, 700));
                bulk.feed_prefixed(chunk, SteadyTime{}, prefix[0], prefix[1], got);
                expected += prefixed_by_lines(reference, chunk, prefix[0], prefix[1]);
                rest.remove_prefix(chunk.size());
            }
            ASSERT_EQ(got.view(), expected) << "round " << round << " max_line " << max_line;
            EXPECT_EQ(bulk.has_partial(), reference.has_partial());
        }
    }
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
