#include "logrelay/output.hpp"
#include "logrelay/own_messages.hpp"

#include <gtest/gtest.h>

using namespace preforkctl::logrelay;

namespace {

std::string format(OutputOptions options, int slot, Stream stream, const Line& line, int pid = 0) {
    LineFormatter formatter(std::move(options));
    ByteBuffer out;
    formatter.append(out, slot, stream, pid, line, "2026-01-02T03:04:05.678Z");
    return std::string(out.view());
}

}  // namespace

TEST(LineFormatter, PrefixIsPaddedToTheWidestSlotAndMarksContinuations) {
    const OutputOptions options{Format::prefix, "web", 12, false, false, false};
    EXPECT_EQ(format(options, 3, Stream::out, Line{"hello", false}), "web.3  | hello\n");
    EXPECT_EQ(format(options, 11, Stream::err, Line{"rest", true}), "web.11 + rest\n");
}

TEST(LineFormatter, TimestampsComeBeforeThePrefix) {
    const OutputOptions options{Format::prefix, "web", 1, true, false, false};
    EXPECT_EQ(format(options, 0, Stream::out, Line{"x", false}), "2026-01-02T03:04:05.678Z web.0 | x\n");
}

TEST(LineFormatter, ColourWrapsTheLabelOnlyAndSlotsGetDifferentColours) {
    const OutputOptions options{Format::prefix, "web", 2, false, true, true};
    const std::string first = format(options, 0, Stream::out, Line{"x", false});
    const std::string second = format(options, 1, Stream::out, Line{"x", false});
    EXPECT_EQ(first.rfind("\033[", 0), 0u);
    EXPECT_TRUE(first.ends_with("web.0 | \033[0mx\n")) << first;
    EXPECT_NE(first.substr(0, 5), second.substr(0, 5));
}

TEST(LineFormatter, JsonCarriesTsSlotPidStreamLineAndMarksContinuations) {
    const OutputOptions options{Format::json, "web", 1, false, false, false};
    EXPECT_EQ(format(options, 0, Stream::err, Line{"a\"b", true}, 42),
              "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"slot\":0,\"pid\":42,\"stream\":\"stderr\","
              "\"continuation\":true,\"line\":\"a\\\"b\"}\n");
}

TEST(LineFormatter, JsonNamesThePidOfEachLineEvenWhenTwoWorkersOfASlotAlternate) {
    // A rolling restart: the old and the new worker of slot 1 write at the same time.
    LineFormatter formatter(OutputOptions{Format::json, "web", 2, false, false, false});
    ByteBuffer out;
    formatter.append(out, 1, Stream::out, 1001, Line{"old", false}, "t");
    formatter.append(out, 1, Stream::out, 2002, Line{"new", false}, "t");
    formatter.append(out, 1, Stream::err, 1001, Line{"old again", false}, "t");
    EXPECT_EQ(out.view(),
              "{\"ts\":\"t\",\"slot\":1,\"pid\":1001,\"stream\":\"stdout\",\"line\":\"old\"}\n"
              "{\"ts\":\"t\",\"slot\":1,\"pid\":2002,\"stream\":\"stdout\",\"line\":\"new\"}\n"
              "{\"ts\":\"t\",\"slot\":1,\"pid\":1001,\"stream\":\"stderr\",\"line\":\"old again\"}\n");
}

TEST(LineFormatter, RawIsTheLineUnchanged) {
    const OutputOptions options{Format::raw, "web", 1, false, false, false};
    EXPECT_EQ(format(options, 0, Stream::out, Line{std::string_view("a\0b\r", 4), false}), std::string("a\0b\r\n", 5));
}

TEST(ResolveColor, AlwaysAndNeverWinAutoNeedsATerminalAndNoNonEmptyNoColor) {
    EXPECT_TRUE(resolve_color(ColorChoice::always, "1", false));
    EXPECT_FALSE(resolve_color(ColorChoice::never, nullptr, true));
    EXPECT_TRUE(resolve_color(ColorChoice::automatic, nullptr, true));
    EXPECT_TRUE(resolve_color(ColorChoice::automatic, "", true)) << "an empty NO_COLOR does not count";
    EXPECT_FALSE(resolve_color(ColorChoice::automatic, "1", true));
    EXPECT_FALSE(resolve_color(ColorChoice::automatic, nullptr, false));
}

TEST(FormatTimestamp, IsUtcIso8601WithMilliseconds) {
    const auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
    EXPECT_EQ(format_timestamp(when), "2023-11-14T22:13:20.123Z");
}

TEST(LineFormatter, ColourIsDecidedPerStream) {
    // stdout a terminal, stderr a file: only stdout lines are coloured (and the other way round).
    EXPECT_NE(format(OutputOptions{Format::prefix, "web", 1, false, true, false}, 0, Stream::out, Line{"x", false})
                  .find("\033["),
              std::string::npos);
    EXPECT_EQ(format(OutputOptions{Format::prefix, "web", 1, false, true, false}, 0, Stream::err, Line{"x", false}),
              "web.0 | x\n");
    EXPECT_EQ(format(OutputOptions{Format::prefix, "web", 1, false, false, true}, 0, Stream::out, Line{"x", false}),
              "web.0 | x\n");
    EXPECT_NE(format(OutputOptions{Format::prefix, "web", 1, false, false, true}, 0, Stream::err, Line{"x", true})
                  .find("\033["),
              std::string::npos);
}

TEST(OwnMessage, TextStandsApartFromWorkerLinesAndJsonIsOneObjectPerLine) {
    std::string out;
    append_own_message(out, OwnFormat::text, "ignored", 7, "warning", "slot 1: gone");
    EXPECT_EQ(out, "preforkctl: warning: slot 1: gone\n");
    out.clear();
    append_own_message(out, OwnFormat::json, "2026-01-02T03:04:05.678Z", 7, "error", "two\nlines \"q\"");
    EXPECT_EQ(out,
              "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"source\":\"preforkctl\",\"pid\":7,\"stream\":\"stderr\","
              "\"level\":\"error\",\"line\":\"two\\nlines \\\"q\\\"\"}\n");
}
