// OutputSink against real pipes: the thin shell around write(2) that must never tear or block.
#include "logrelay/sink.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <string>

using namespace preforkctl::logrelay;

namespace {

std::string read_available(int fd) {
    std::string out;
    char buffer[65536];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    return out;
}

}  // namespace

TEST(OutputSink, APartlyWrittenQueueContinuesWhereItStoppedAndLaterLinesQueueBehindIt) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    ASSERT_GT(::fcntl(fds[1], F_SETPIPE_SZ, 4096), 0);
    OutputSink sink(preforkctl::sys::Fd(fds[1]), SinkKind::nonblocking);
    std::string expected;
    for (char c : {'a', 'b', 'c'}) {
        const std::string line = std::string(3000, c) + "\n";
        sink.queue().append(line);
        expected += line;
    }
    std::string got;
    EXPECT_EQ(sink.write_some(), WriteOutcome::would_block);
    const std::string late = std::string(100, 'd') + "\n";
    sink.queue().append(late);  // queued while the first lines are half out
    expected += late;
    for (int round = 0; round < 100 && got.size() < expected.size(); ++round) {
        got += read_available(fds[0]);
        sink.write_some();
    }
    got += read_available(fds[0]);
    EXPECT_EQ(got, expected);
    EXPECT_EQ(sink.queued(), 0u);
    ::close(fds[0]);
}

TEST(OutputSink, AReaderThatIsGoneBreaksTheSinkForGoodAndDiscardsTheQueue) {
    std::signal(SIGPIPE, SIG_IGN);  // as preforkctl does: EPIPE instead of death
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    ::close(fds[0]);
    OutputSink sink(preforkctl::sys::Fd(fds[1]), SinkKind::nonblocking);
    sink.queue().append("line\nline\n");
    EXPECT_EQ(sink.write_some(), WriteOutcome::broken);
    EXPECT_EQ(sink.discarded_lines(), 2u);
    EXPECT_TRUE(sink.broken());
    EXPECT_EQ(sink.error(), EPIPE);
    EXPECT_EQ(sink.queued(), 0u);
}

TEST(OutputSink, APipeIsReopenedNonBlockingWithoutChangingTheSharedDescription) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    OutputSink sink = open_sink(fds[1]);
    EXPECT_EQ(sink.kind(), SinkKind::nonblocking);
    EXPECT_EQ(::fcntl(fds[1], F_GETFL) & O_NONBLOCK, 0) << "the inherited description must stay blocking";
    EXPECT_NE(::fcntl(sink.fd(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_TRUE(same_file(fds[1], sink.fd()));
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(OutputSink, AFileOrDevNullIsWrittenDirectly) {
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(null, 0);
    OutputSink sink = open_sink(null);
    EXPECT_EQ(sink.kind(), SinkKind::direct);
    sink.queue().append("x\n");
    EXPECT_EQ(sink.write_some(), WriteOutcome::all_written);
    ::close(null);
}

// --log-format inherit: workers write to the same stderr pipe, so each of our writes must be one a pipe keeps
// whole (at most PIPE_BUF bytes, ending at a line's end); a bigger writev could be cut where the pipe is full.
// A SOCK_SEQPACKET pair shows each write(2) as one message.
TEST(OutputSink, WithWholeLinesEachWriteEndsAtALineEndAndFitsPipeBuf) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
    OutputSink sink(preforkctl::sys::Fd(fds[1]), SinkKind::nonblocking);
    sink.write_whole_lines();
    std::string expected;
    for (int i = 0; i < 10; ++i) expected += std::string(999, static_cast<char>('a' + i)) + "\n";
    expected += std::string(5000, 'z') + "\n";  // longer than PIPE_BUF: alone in its write
    sink.queue().append(expected);
    EXPECT_EQ(sink.write_some(), WriteOutcome::all_written);
    std::string got;
    char message[16384];
    for (ssize_t n; (n = ::recv(fds[0], message, sizeof message, 0)) > 0;) {
        const std::string_view text(message, static_cast<std::size_t>(n));
        EXPECT_TRUE(text.ends_with('\n'));
        EXPECT_TRUE(text.size() <= PIPE_BUF || text.find('\n') == text.size() - 1) << text.size();
        got += text;
    }
    EXPECT_EQ(got, expected);
    ::close(fds[0]);
}

// Without /proc (here: a directory that has no fd entries) a pipe cannot get a description of its own:
// plain writes, and the sink says why so that preforkctl can warn.
TEST(OutputSink, APipeThatCannotBeReopenedGetsPlainWritesAndTellsWhy) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const OutputSink sink = open_sink(fds[1], "/nonexistent-proc/self/fd");
    EXPECT_EQ(sink.kind(), SinkKind::blocking);
    EXPECT_EQ(sink.reopen_error(), ENOENT);
    const OutputSink reopened = open_sink(fds[1]);
    EXPECT_EQ(reopened.kind(), SinkKind::nonblocking);
    EXPECT_EQ(reopened.reopen_error(), 0);
    ::close(fds[0]);
    ::close(fds[1]);
}
