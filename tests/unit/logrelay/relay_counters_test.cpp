// Relay::counters() against real pipes and a real io_context: the test writes to a slot's pipes as its
// worker would, and reads what the relay writes to the stdout and stderr pipes it was given.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "logrelay/relay.hpp"

using namespace preforkctl::logrelay;

namespace {

using namespace std::chrono_literals;

std::string read_available(int fd) {
    std::string out;
    char buffer[65536];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    return out;
}

void write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        ASSERT_GT(n, 0) << std::strerror(errno);
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::size_t count_lines(std::string_view text) { return static_cast<std::size_t>(std::ranges::count(text, '\n')); }

// The pipes that stand for preforkctl's stdout and stderr, read by the test (non-blocking).
class RelayCountersTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(::pipe2(out_, O_NONBLOCK | O_CLOEXEC), 0);
        ASSERT_EQ(::pipe2(err_, O_NONBLOCK | O_CLOEXEC), 0);
    }
    void TearDown() override {
        for (const int fd : {out_[0], out_[1], err_[0], err_[1]}) ::close(fd);
    }

    // Runs the event loop until `done` holds (true) or 5 s have passed (false); what the relay wrote is
    // collected into out_text_ and err_text_ on the way.
    bool run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < deadline) {
            if (io.stopped()) io.restart();
            io.run_for(1ms);
            collect();
            if (done()) return true;
        }
        return false;
    }
    void collect() {
        out_text_ += read_available(out_[0]);
        err_text_ += read_available(err_[0]);
    }

    int out_[2] = {-1, -1};
    int err_[2] = {-1, -1};
    std::string out_text_;
    std::string err_text_;
};

}  // namespace

TEST_F(RelayCountersTest, CountsWorkerStdoutLinesAndTheirBytesWithoutLineEndsOrFormatting) {
    boost::asio::io_context io;
    RelayOptions options;
    options.name = "w";
    Relay relay(io, options, out_[1], err_[1]);
    ASSERT_TRUE(relay.open_slot(0));
    write_all(relay.worker_stdout(0), "hello\nworld!\n\n");
    ASSERT_TRUE(run_until(io, [&] { return relay.counters().out.lines == 3; })) << relay.counters().out.lines;
    const RelayCounters counters = relay.counters();
    EXPECT_EQ(counters.out.bytes, 11u) << "\"hello\" + \"world!\" + \"\", not the \"w.0 | \" labels";
    EXPECT_EQ(counters.out.dropped_lines, 0u);
    EXPECT_EQ(counters.err.lines, 0u);
    EXPECT_EQ(counters.err.bytes, 0u);
    relay.finish();
    collect();
    EXPECT_EQ(out_text_, "w.0 | hello\nw.0 | world!\nw.0 | \n");
}

TEST_F(RelayCountersTest, CountsWorkerStderrApartAndNotPreforkctlsOwnMessages) {
    boost::asio::io_context io;
    RelayOptions options;
    options.name = "w";
    options.slots = 2;
    Relay relay(io, options, out_[1], err_[1]);
    ASSERT_TRUE(relay.open_slot(0));
    ASSERT_TRUE(relay.open_slot(1));
    spdlog::warn("a message of preforkctl's own");
    write_all(relay.worker_stderr(0), "a\nbb\n");
    write_all(relay.worker_stderr(1), "ccc\n");
    write_all(relay.worker_stdout(1), "dddd\n");
    ASSERT_TRUE(run_until(io, [&] { return relay.counters().err.lines == 3 && relay.counters().out.lines == 1; }));
    const RelayCounters counters = relay.counters();
    EXPECT_EQ(counters.err.bytes, 6u) << "both slots together";
    EXPECT_EQ(counters.out.bytes, 4u);
    relay.finish();
    collect();
    EXPECT_NE(err_text_.find("a message of preforkctl's own"), std::string::npos) << err_text_;
    EXPECT_EQ(count_lines(err_text_), 4u) << err_text_;
    EXPECT_EQ(relay.counters().err.lines, 3u);
}

TEST_F(RelayCountersTest, ALineCutAtMaxLineCountsAsThePiecesShownAndItsBytesOnce) {
    boost::asio::io_context io;
    RelayOptions options;
    options.format = Format::raw;
    options.max_line = 4;
    Relay relay(io, options, out_[1], err_[1]);
    ASSERT_TRUE(relay.open_slot(0));
    // Cut after 4 and 8 bytes; the newline right after a full piece ends the line without a piece of its own.
    write_all(relay.worker_stdout(0), "abcdefghij\nklmn\nxy\n");
    ASSERT_TRUE(run_until(io, [&] { return relay.counters().out.lines == 5; })) << relay.counters().out.lines;
    relay.finish();
    collect();
    EXPECT_EQ(out_text_, "abcd\nefgh\nij\nklmn\nxy\n");
    EXPECT_EQ(relay.counters().out.lines, count_lines(out_text_));
    EXPECT_EQ(relay.counters().out.bytes, 16u);
}

TEST_F(RelayCountersTest, AnUnterminatedLastLineCountsOnceItIsShown) {
    boost::asio::io_context io;
    RelayOptions options;
    options.format = Format::raw;
    Relay relay(io, options, out_[1], err_[1]);
    ASSERT_TRUE(relay.open_slot(0));
    write_all(relay.worker_stdout(0), "one\ntail");
    ASSERT_TRUE(run_until(io, [&] { return relay.counters().out.lines == 1; }));
    EXPECT_EQ(relay.counters().out.bytes, 3u) << "\"tail\" waits for its newline";
    relay.finish();
    collect();
    EXPECT_EQ(out_text_, "one\ntail\n");
    EXPECT_EQ(relay.counters().out.lines, 2u);
    EXPECT_EQ(relay.counters().out.bytes, 7u);
}

TEST_F(RelayCountersTest, JsonCountsTheWorkersBytesNotTheEscapedText) {
    boost::asio::io_context io;
    RelayOptions options;
    options.format = Format::json;
    Relay relay(io, options, out_[1], err_[1]);
    ASSERT_TRUE(relay.open_slot(0));
    write_all(relay.worker_stdout(0), "say \"hi\"\t\\\n");
    ASSERT_TRUE(run_until(io, [&] { return relay.counters().out.lines == 1; }));
    EXPECT_EQ(relay.counters().out.bytes, 10u);
    relay.finish();
}

// With --log-overflow drop and a stdout nobody reads, lines are refused whole: every line the worker wrote
// is either relayed or dropped, and the dropped ones are counted on their stream only.
TEST_F(RelayCountersTest, LinesDroppedAtAStalledStdoutAreCountedAndTheRestAreRelayed) {
    boost::asio::io_context io;
    RelayOptions options;
    options.format = Format::raw;
    options.overflow = OverflowPolicy::drop;
    Relay relay(io, options, out_[1], err_[1]);
    ASSERT_TRUE(relay.open_slot(0));
    const int worker_out = relay.worker_stdout(0);
    ASSERT_EQ(::fcntl(worker_out, F_SETFL, ::fcntl(worker_out, F_GETFL) | O_NONBLOCK), 0);
    const std::string line(63, 'x');
    std::string chunk;
    for (int i = 0; i < 1024; ++i) chunk += line + '\n';
    // The relay keeps about 1 MiB queued and the pipe to the reader holds some more: 8 MiB overflows both.
    std::uint64_t written = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (written < 8 * 1024 * 1024 / 64 && std::chrono::steady_clock::now() < deadline) {
        const ssize_t n = ::write(worker_out, chunk.data(), chunk.size());
        if (n > 0) {
            ASSERT_EQ(static_cast<std::size_t>(n), chunk.size()) << "a partial write would cut a line";
            written += 1024;
        }
        io.run_for(1ms);
    }
    ASSERT_TRUE(run_until(io, [&] { return relay.counters().out.dropped_lines > 0; }));
    // Now read the output: what was queued goes out, and every line is accounted for.
    ASSERT_TRUE(run_until(io, [&] {
        const StreamCount out = relay.counters().out;
        return out.lines + out.dropped_lines == written;
    })) << relay.counters().out.lines << " + " << relay.counters().out.dropped_lines << " != " << written;
    const StreamCount out = relay.counters().out;
    EXPECT_EQ(out.bytes, out.lines * 63);
    EXPECT_EQ(relay.counters().err.dropped_lines, 0u);
    relay.finish();
    collect();
    EXPECT_EQ(count_lines(out_text_), out.lines);
    EXPECT_NE(err_text_.find("dropped"), std::string::npos) << "and says so";
}

TEST_F(RelayCountersTest, InheritRelaysNothingSoEveryCountStaysZero) {
    boost::asio::io_context io;
    RelayOptions options;
    options.pipes = false;
    Relay relay(io, options, out_[1], err_[1]);
    ASSERT_TRUE(relay.open_slot(0));
    EXPECT_EQ(relay.worker_stdout(0), STDOUT_FILENO) << "the worker writes to our stdout itself";
    spdlog::warn("a message of preforkctl's own");
    ASSERT_TRUE(run_until(io, [&] { return err_text_.find("own") != std::string::npos; }));
    relay.finish();
    const RelayCounters counters = relay.counters();
    for (const StreamCount& count : {counters.out, counters.err}) {
        EXPECT_EQ(count.lines, 0u);
        EXPECT_EQ(count.bytes, 0u);
        EXPECT_EQ(count.dropped_lines, 0u);
    }
}

// A rolling restart retires the old worker's pipes; what it wrote to them stays counted after they are freed.
TEST_F(RelayCountersTest, LinesOfARetiredPipeStayCountedAfterItIsFreed) {
    boost::asio::io_context io;
    RelayOptions options;
    options.format = Format::raw;
    Relay relay(io, options, out_[1], err_[1]);
    ASSERT_TRUE(relay.open_slot(0));
    const int old_worker = ::fcntl(relay.worker_stdout(0), F_DUPFD_CLOEXEC, 3);  // the running worker's fd 1
    ASSERT_GE(old_worker, 0);
    ASSERT_TRUE(relay.separate_next_worker(0));
    write_all(old_worker, "old\n");
    ::close(old_worker);  // the old pipe ends: read to its end, then closed
    write_all(relay.worker_stdout(0), "new!\n");
    ASSERT_TRUE(run_until(io, [&] { return relay.counters().out.lines == 2; }));
    ASSERT_TRUE(relay.separate_next_worker(0));  // frees the closed pipe
    EXPECT_EQ(relay.counters().out.lines, 2u);
    EXPECT_EQ(relay.counters().out.bytes, 7u);
    relay.finish();
}
