#pragma once
// Relay::Impl, shared by the two halves of the relay: relay.cpp reads the slots' pipes and frames and formats
// their lines; relay_output.cpp writes the queued text to preforkctl's stdout and stderr. Internal to
// logrelay/: nothing outside includes it.

#include <fcntl.h>
#include <spdlog/sinks/sink.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "logrelay/line_framer.hpp"
#include "logrelay/output.hpp"
#include "logrelay/overflow.hpp"
#include "logrelay/pipe_sizing.hpp"
#include "logrelay/relay.hpp"
#include "logrelay/sink.hpp"
#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::logrelay {

namespace asio = boost::asio;

inline constexpr std::size_t kReadChunk = 256 * 1024;  // up to a quarter of a fully grown pipe per read(2)
inline constexpr int kReadsPerTurn = 4;                // then other streams get their turn
inline constexpr std::size_t kWriteEarly = 256 * 1024; // write at once instead of at the end of the round
inline constexpr std::size_t kDrainLimit = 4 * 1024 * 1024;  // a dead worker's children may keep writing

// The backlog per output stream: enough to smooth bursts, small enough that memory stays modest.
inline std::size_t backlog_bound(std::size_t max_line) {
    return std::max<std::size_t>(1024 * 1024, 2 * max_line + 1024);
}

class Relay::Impl {
public:
    struct Output;

    // One of a slot's two pipes.
    struct Stream {
        Stream(asio::io_context& io, sys::Pipe pipe, int slot_number, logrelay::Stream which, Output& to,
               StreamCount& counts, std::size_t max_line)
            : write_end(std::move(pipe.write_end)),
              reader(io, pipe.read_end.release()),
              slot(slot_number),
              kind(which),
              output(to),
              count(counts),
              framer(max_line) {}

        sys::Fd write_end;  // handed to each worker of the slot
        asio::posix::stream_descriptor reader;
        int slot;
        logrelay::Stream kind;
        Output& output;
        // The relay's count for this kind of stream: it outlives the pipe (a retired pipe is freed, its
        // lines stay counted).
        StreamCount& count;
        LineFramer framer;
        std::size_t pipe_capacity = 0;  // 0: unknown, or F_SETPIPE_SZ failed once (never grown then)
        std::size_t grown = 0;          // what growing this pipe took of the budget
        int pid = 0;          // the worker whose lines these are (json "pid"); 0 before the first
        bool busy = false;    // a wait or a posted read is pending
        bool paused = false;  // --log-overflow block: not read until the output drains
        bool retired = false; // no longer the slot's (we closed our write end): read until end of file
        bool done = false;    // retired and closed; freed once no handler or pause list refers to it
    };

    // preforkctl's stdout or stderr (one object for both when they are the same file).
    struct Output {
        Output(asio::io_context& io, OutputSink opened, const char* stream_name, OverflowPolicy policy,
               std::size_t bound)
            : sink(std::move(opened)), gate(policy, bound), retry(io), name(stream_name) {
            if (sink.kind() == SinkKind::nonblocking) {
                // Asio watches a duplicate of our own non-blocking description (it sets FIONBIO on it, which
                // is harmless here, and closes the duplicate itself).
                writable.emplace(io, ::fcntl(sink.fd(), F_DUPFD_CLOEXEC, 3));
            }
        }

        OutputSink sink;
        OverflowGate gate;
        std::optional<asio::posix::stream_descriptor> writable;
        asio::steady_timer retry;       // sockets: no readiness watch without touching shared flags
        std::chrono::milliseconds retry_delay{1};
        bool waiting = false;           // for writability
        bool flush_posted = false;
        bool broken_reported = false;
        std::uint64_t lost_to_closed = 0;
        std::uint64_t own_dropped = 0;  // preforkctl's own messages, not worker lines: reported apart
        std::vector<Stream*> paused;
        const char* name;
    };

    Impl(asio::io_context& io, RelayOptions options, int out_fd, int err_fd);

    void append_own(std::string_view text);
    /// One warning when stdout or stderr could not get a non-blocking description of its own.
    void warn_if_not_reopened();

    asio::io_context& io_;
    RelayOptions options_;
    LineFormatter formatter_;
    std::unique_ptr<Output> stdout_;
    std::unique_ptr<Output> stderr_storage_;
    Output* stderr_ = nullptr;
    std::vector<std::unique_ptr<Stream>> streams_;  // slot i: [2i] stdout, [2i+1] stderr
    std::vector<std::unique_ptr<Stream>> retired_;  // pipes a previous worker still writes to
    // Not value-initialised: zeroing it would make all of it resident at start-up (a quarter of a MiB of
    // anonymous memory) before any worker wrote a byte; a page becomes resident when a read first fills it.
    std::unique_ptr<char[]> buffer_ = std::make_unique_for_overwrite<char[]>(kReadChunk);
    asio::steady_timer partial_timer_;
    bool partial_timer_armed_ = false;
    bool finishing_ = false;
    std::size_t pipe_budget_left_ = kPipeGrowthBudget;
    RelayCounters counters_;
    std::vector<std::shared_ptr<spdlog::sinks::sink>> saved_sinks_;

    static std::size_t index_of(int slot, logrelay::Stream which) {
        return static_cast<std::size_t>(slot) * 2 + (which == logrelay::Stream::out ? 0 : 1);
    }
    Stream* stream(int slot, logrelay::Stream which) const {
        const std::size_t index = index_of(slot, which);
        return index < streams_.size() ? streams_[index].get() : nullptr;
    }

    Result<std::unique_ptr<Stream>> make_stream(int slot, logrelay::Stream which);
    template <class F>
    void for_each_stream(F&& f) {
        for (const auto& stream : streams_) {
            if (stream) f(*stream);
        }
        for (const auto& stream : retired_) {
            if (!stream->done) f(*stream);
        }
    }
    void close_retired(Stream& stream);
    void free_closed();
    void pump(Stream& stream);
    void wait_readable(Stream& stream);
    bool read_once(Stream& stream, bool& more);
    void relay_bytes(Stream& stream, std::string_view bytes);
    void grow_pipe_after(Stream& stream, std::size_t read);
    void add_line(Stream& stream, const Line& line, std::string_view timestamp);
    void after_lines(Stream& stream);
    void arm_partial_timer();
    void on_partial_timer();
    void schedule_flush(Output& output);
    void flush(Output& output);
    void wait_writable(Output& output);
    void resume_paused(Output& output);
    void report(Output& output, bool final);
    bool drain(Stream& stream);
    void finish_output(Output& output);
    void report_own_dropped(Output& output);
    /// format_timestamp() of now, formatted once per millisecond; "" when no line needs one.
    std::string_view timestamp_now();

    std::int64_t timestamp_ms_ = -1;
    std::string timestamp_;
};

}  // namespace preforkctl::logrelay
