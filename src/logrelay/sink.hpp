#pragma once
// OutputSink: one of preforkctl's own output descriptors (stdout or stderr), written without blocking the
// event loop. It queues whole formatted lines and writes them in order; a partly written buffer continues
// where it stopped, so a line is never torn by another line of ours.

#include <cstddef>
#include <string>
#include <string_view>

#include "logrelay/byte_buffer.hpp"
#include "sys/fd.hpp"

namespace preforkctl::logrelay {

/// How a sink writes, decided by what the descriptor is (see open_sink).
enum class SinkKind {
    direct,       // regular file or a device that is not a terminal: writes never wait for a reader
    nonblocking,  // pipe, FIFO or terminal, reopened as our own O_NONBLOCK open file description
    socket,       // socket: send(MSG_DONTWAIT), the shared description's flags stay as they are
    blocking,     // anything else, or a pipe/terminal when /proc is missing: plain writes that may wait
    closed,       // nothing to write to (EPIPE, a bad descriptor, a FIFO without a reader)
};

enum class WriteOutcome { all_written, would_block, broken };

class OutputSink {
public:
    OutputSink() = default;
    OutputSink(sys::Fd fd, SinkKind kind, int reopen_error = 0)
        : fd_(std::move(fd)), kind_(kind), reopen_error_(reopen_error) {}

    /// The buffer to append whole lines to.
    ByteBuffer& queue() { return filling_; }
    /// Bytes queued and not yet written.
    [[nodiscard]] std::size_t queued() const { return writing_.size() - written_ + filling_.size(); }

    /// Writes as much of the queue as the descriptor takes now. `broken` discards the queue for good.
    WriteOutcome write_some();

    /// Each write(2) ends at the end of a line and has at most PIPE_BUF bytes unless a single line is longer:
    /// for a pipe that others write to as well (--log-format inherit), where only such writes are atomic.
    void write_whole_lines() { whole_lines_ = true; }

    /// Waits up to `timeout_ms` until the descriptor is writable (used only after the event loop ended).
    bool wait_writable(int timeout_ms) const;

    /// The bytes queued and not yet written, in order (an upgrade hands them to the next image).
    [[nodiscard]] std::string pending() const {
        std::string bytes(writing_.view().substr(written_));
        bytes.append(filling_.view());
        return bytes;
    }

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] SinkKind kind() const { return kind_; }
    [[nodiscard]] bool broken() const { return kind_ == SinkKind::closed; }
    /// errno of the write that broke the sink.
    [[nodiscard]] int error() const { return error_; }
    /// errno of the failed reopen through /proc that left a pipe or terminal with plain writes that can
    /// wait for the reader (kind blocking); 0 otherwise.
    [[nodiscard]] int reopen_error() const { return reopen_error_; }
    /// Lines that were queued when the sink broke and were discarded.
    [[nodiscard]] std::size_t discarded_lines() const { return discarded_lines_; }

private:
    sys::Fd fd_;
    SinkKind kind_ = SinkKind::closed;
    int error_ = 0;
    int reopen_error_ = 0;
    bool whole_lines_ = false;
    std::size_t discarded_lines_ = 0;
    ByteBuffer writing_;      // being written: bytes before written_ are out already
    std::size_t written_ = 0;
    ByteBuffer filling_;      // appended to while writing_ drains
};

/// Opens a sink for preforkctl's descriptor `fd` (1 or 2). Never changes the flags of `fd`'s open file
/// description, which preforkctl shares with its parent and, with --log-format inherit, its workers.
/// `proc_fd_dir` is where fd is reopened from (tests point it elsewhere).
OutputSink open_sink(int fd, const char* proc_fd_dir = "/proc/self/fd");

/// True when descriptors a and b are the same file (e.g. 2>&1), so that both streams must share one
/// sink: two sinks writing to one pipe could tear each other's long lines.
bool same_file(int a, int b);

}  // namespace preforkctl::logrelay
