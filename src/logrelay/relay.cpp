#include "logrelay/relay.hpp"

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "logrelay/own_messages.hpp"
#include "logrelay/pipe_sizing.hpp"
#include "logrelay/sink.hpp"

namespace preforkctl::logrelay {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kReadChunk = 256 * 1024;  // up to a quarter of a fully grown pipe per read(2)
constexpr int kReadsPerTurn = 4;                // then other streams get their turn
constexpr std::size_t kWriteEarly = 256 * 1024; // write at once instead of at the end of the round
constexpr std::size_t kDrainLimit = 4 * 1024 * 1024;  // a dead worker's children may keep writing

// The backlog per output stream: enough to smooth bursts, small enough that memory stays modest.
std::size_t backlog_bound(std::size_t max_line) { return std::max<std::size_t>(1024 * 1024, 2 * max_line + 1024); }

}  // namespace

// ---------------------------------------------------------------------------------------------------
class Relay::Impl {
public:
    struct Output;

    // One of a slot's two pipes.
    struct Stream {
        Stream(asio::io_context& io, sys::Pipe pipe, int slot_number, logrelay::Stream which, Output& to,
               std::size_t max_line)
            : write_end(std::move(pipe.write_end)),
              reader(io, pipe.read_end.release()),
              slot(slot_number),
              kind(which),
              output(to),
              framer(max_line) {}

        sys::Fd write_end;  // handed to each worker of the slot
        asio::posix::stream_descriptor reader;
        int slot;
        logrelay::Stream kind;
        Output& output;
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
    std::array<char, kReadChunk> buffer_{};
    asio::steady_timer partial_timer_;
    bool partial_timer_armed_ = false;
    bool finishing_ = false;
    std::size_t pipe_budget_left_ = kPipeGrowthBudget;
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

namespace {

// spdlog sink that queues preforkctl's own messages on the relay's stderr: in order with worker stderr
// lines, and never a blocking write from inside the event loop.
class QueueSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
public:
    explicit QueueSink(Relay::Impl& relay) : relay_(relay) {}

protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
        spdlog::memory_buf_t text;
        formatter_->format(message, text);
        relay_.append_own(std::string_view(text.data(), text.size()));
    }
    void flush_() override {}

private:
    Relay::Impl& relay_;
};

}  // namespace

Relay::Impl::Impl(asio::io_context& io, RelayOptions options, int out_fd, int err_fd)
    : io_(io),
      options_(std::move(options)),
      formatter_(OutputOptions{options_.format, options_.name, options_.slots, options_.timestamps,
                               resolve_color(options_.color, std::getenv("NO_COLOR"), ::isatty(out_fd) == 1),
                               resolve_color(options_.color, std::getenv("NO_COLOR"), ::isatty(err_fd) == 1)}),
      partial_timer_(io) {
    const std::size_t bound = backlog_bound(options_.max_line);
    stdout_ = std::make_unique<Output>(io, open_sink(out_fd), "stdout", options_.overflow, bound);
    if (same_file(out_fd, err_fd)) {
        stderr_ = stdout_.get();  // 2>&1: one queue, or the two could tear each other's lines
    } else {
        stderr_storage_ = std::make_unique<Output>(io, open_sink(err_fd), "stderr", options_.overflow, bound);
        stderr_ = stderr_storage_.get();
    }
    // With inherit, workers write to the same stderr: our messages go out in writes that cannot be torn.
    if (!options_.pipes) stderr_->sink.write_whole_lines();
}

void Relay::Impl::warn_if_not_reopened() {
    std::string streams;
    int error = 0;
    for (const Output* output : {stdout_.get(), stderr_}) {
        if (output->sink.reopen_error() == 0 || (output == stderr_ && stderr_ == stdout_.get())) continue;
        streams += streams.empty() ? output->name : std::string(" and ") + output->name;
        error = output->sink.reopen_error();
    }
    if (error == 0) return;
    spdlog::warn("cannot reopen {} through /proc ({}): plain writes from now on, which wait, and hold up "
                 "supervision, while the reader stalls",
                 streams, std::strerror(error));
}

std::string_view Relay::Impl::timestamp_now() {
    if (!formatter_.wants_timestamp()) return {};
    const auto now = std::chrono::system_clock::now();
    const std::int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    if (ms != timestamp_ms_) {
        timestamp_ms_ = ms;
        timestamp_ = format_timestamp(now);
    }
    return timestamp_;
}

void Relay::Impl::append_own(std::string_view text) {
    Output& output = *stderr_;
    if (output.sink.broken()) return;
    // Our own messages are not subject to --log-overflow (they are few and explain what happened), but
    // even they stop at twice the bound: a stderr nobody reads must not cost unbounded memory. They are
    // counted apart from worker lines, which --log-overflow block never drops.
    if (output.sink.queued() > 2 * output.gate.bound()) {
        ++output.own_dropped;
        return;
    }
    output.sink.queue().append(text);
    if (finishing_) return;
    schedule_flush(output);
}

// Reads a few chunks, then yields to the other streams; waits for readiness only after EAGAIN, because Asio
// watches pipes edge-triggered and a readiness that arrives while nobody waits is not reported again.
void Relay::Impl::pump(Stream& stream) {
    stream.busy = false;
    if (stream.done) return;
    for (int turn = 0; turn < kReadsPerTurn; ++turn) {
        if (stream.output.gate.should_pause(stream.output.sink.queued())) {
            stream.paused = true;
            stream.output.paused.push_back(&stream);
            return;
        }
        bool more = false;
        if (!read_once(stream, more)) return;
        if (!more) {
            wait_readable(stream);
            return;
        }
    }
    stream.busy = true;
    asio::post(io_, [this, &stream] { pump(stream); });
}

void Relay::Impl::wait_readable(Stream& stream) {
    stream.busy = true;
    stream.reader.async_wait(asio::posix::stream_descriptor::wait_read,
                             [this, &stream](const boost::system::error_code& error) {
                                 stream.busy = false;
                                 if (!error) pump(stream);
                             });
}

// One read(2). Returns false when the stream cannot be read any more; `more` tells whether data may remain.
bool Relay::Impl::read_once(Stream& stream, bool& more) {
    for (;;) {
        const ssize_t n = ::read(stream.reader.native_handle(), buffer_.data(), buffer_.size());
        if (n > 0) {
            grow_pipe_after(stream, static_cast<std::size_t>(n));
            relay_bytes(stream, std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
            more = true;
            return true;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            more = false;
            return true;
        }
        if (n == 0 && stream.retired) {
            // Every writer of a previous worker's pipe is gone: what it said is all relayed.
            close_retired(stream);
            return false;
        }
        // EOF cannot happen while we hold the write end; anything else is a bug worth saying.
        spdlog::error("cannot read the output of slot {}: {}", stream.slot, n == 0 ? "end of file" : std::strerror(errno));
        return false;
    }
}

// Best effort: a pipe that cannot grow (EPERM past the user's pipe limits, EBUSY) keeps working as it is.
void Relay::Impl::grow_pipe_after(Stream& stream, std::size_t read) {
    const std::size_t wanted = next_pipe_capacity(stream.pipe_capacity, read, pipe_budget_left_);
    if (wanted == stream.pipe_capacity) return;
    const int granted = ::fcntl(stream.reader.native_handle(), F_SETPIPE_SZ, static_cast<int>(wanted));
    if (granted < 0 || static_cast<std::size_t>(granted) <= stream.pipe_capacity) {
        stream.pipe_capacity = 0;
        return;
    }
    const std::size_t taken =
        std::min(pipe_budget_left_, static_cast<std::size_t>(granted) - stream.pipe_capacity);
    pipe_budget_left_ -= taken;
    stream.grown += taken;
    stream.pipe_capacity = static_cast<std::size_t>(granted);
}

void Relay::Impl::relay_bytes(Stream& stream, std::string_view bytes) {
    Output& output = stream.output;
    const SteadyTime now = std::chrono::steady_clock::now();
    const std::string_view timestamp = timestamp_now();
    if (output.gate.policy() == OverflowPolicy::block && !output.sink.broken()) {
        // The hot path: nothing to decide per line, so runs of whole lines are formatted in bulk, all with
        // the one timestamp of this read.
        const LineStyle style = formatter_.style(stream.slot, stream.kind, stream.pid, timestamp);
        ByteBuffer& queue = output.sink.queue();
        stream.framer.feed_bulk(
            bytes, now,
            [&](std::string_view run) { return append_styled_lines(queue, style, run, stream.framer.max_line()); },
            [&](const Line& line) { append_styled(queue, style, line); });
    } else {
        stream.framer.feed(bytes, now, [&](const Line& line) { add_line(stream, line, timestamp); });
    }
    after_lines(stream);
}

void Relay::Impl::add_line(Stream& stream, const Line& line, std::string_view timestamp) {
    Output& output = stream.output;
    if (output.sink.broken()) {
        ++output.lost_to_closed;
        return;
    }
    const std::size_t before = output.sink.queued();
    ByteBuffer& queue = output.sink.queue();
    const std::size_t size_before = queue.size();
    formatter_.append(queue, stream.slot, stream.kind, stream.pid, line, timestamp);
    if (!output.gate.admit(before, queue.size() - size_before)) {
        queue.truncate(size_before);  // whole lines only: the line goes, nothing of it stays
        output.gate.count_dropped();
    }
}

void Relay::Impl::after_lines(Stream& stream) {
    if (stream.framer.has_partial() && !partial_timer_armed_ && !finishing_) arm_partial_timer();
    if (!finishing_) schedule_flush(stream.output);
}

void Relay::Impl::arm_partial_timer() {
    std::optional<SteadyTime> oldest;
    for_each_stream([&](Stream& stream) {
        // A paused stream's line is held back by us, not by the worker: its rest may be in the pipe.
        if (stream.paused) return;
        const auto since = stream.framer.partial_since();
        if (since && (!oldest || *since < *oldest)) oldest = since;
    });
    if (!oldest) return;
    partial_timer_armed_ = true;
    partial_timer_.expires_at(*oldest + options_.partial_line_timeout);
    partial_timer_.async_wait([this](const boost::system::error_code& error) {
        partial_timer_armed_ = false;
        if (!error) on_partial_timer();
    });
}

void Relay::Impl::on_partial_timer() {
    const SteadyTime cutoff = std::chrono::steady_clock::now() - options_.partial_line_timeout;
    std::string_view timestamp;
    for_each_stream([&](Stream& stream) {
        if (stream.paused) return;
        const auto since = stream.framer.partial_since();
        if (!since || *since > cutoff) return;
        if (timestamp.data() == nullptr) timestamp = timestamp_now();
        stream.framer.flush_if_waiting_since(cutoff, [&](const Line& line) { add_line(stream, line, timestamp); });
        schedule_flush(stream.output);
    });
    arm_partial_timer();
}

// Lines are collected for the rest of the current round of ready handlers and written with one writev.
void Relay::Impl::schedule_flush(Output& output) {
    if (output.waiting) return;  // the writability wait will flush
    if (output.sink.queued() >= kWriteEarly) {
        flush(output);
        return;
    }
    if (output.flush_posted) return;
    output.flush_posted = true;
    asio::post(io_, [this, &output] {
        output.flush_posted = false;
        if (!output.waiting) flush(output);
    });
}

void Relay::Impl::flush(Output& output) {
    const WriteOutcome outcome = output.sink.write_some();
    switch (outcome) {
        case WriteOutcome::all_written:
            output.retry_delay = std::chrono::milliseconds(1);
            report(output, false);
            break;
        case WriteOutcome::would_block:
            wait_writable(output);
            break;
        case WriteOutcome::broken:
            if (!output.broken_reported) {
                output.broken_reported = true;
                // EPIPE: the reader is gone. Supervision goes on (signals, restarts, stop); what would have
                // gone to this stream is discarded and counted. Said on the other stream, if it still works.
                if (&output != stderr_) {
                    spdlog::warn("cannot write to {} ({}): its worker lines are discarded from now on",
                                 output.name, std::strerror(output.sink.error()));
                }
            }
            break;
    }
    resume_paused(output);
}

void Relay::Impl::wait_writable(Output& output) {
    if (output.waiting) return;
    output.waiting = true;
    auto then = [this, &output](const boost::system::error_code& error) {
        output.waiting = false;
        if (!error) flush(output);
    };
    if (output.writable) {
        output.writable->async_wait(asio::posix::stream_descriptor::wait_write, then);
    } else {
        // A socket: poll again soon, backing off while it stays full.
        output.retry.expires_after(output.retry_delay);
        output.retry_delay = std::min(output.retry_delay * 2, std::chrono::milliseconds(64));
        output.retry.async_wait(then);
    }
}

void Relay::Impl::resume_paused(Output& output) {
    if (output.paused.empty() || !output.gate.may_resume(output.sink.queued())) return;
    std::vector<Stream*> resumed;
    resumed.swap(output.paused);
    const SteadyTime now = std::chrono::steady_clock::now();
    for (Stream* stream : resumed) {
        stream->paused = false;
        stream->framer.restart_partial_clock(now);
        if (!stream->busy) {
            stream->busy = true;
            asio::post(io_, [this, stream] { pump(*stream); });
        }
    }
    if (!partial_timer_armed_ && !finishing_) arm_partial_timer();
}

void Relay::Impl::report(Output& output, bool final) {
    const std::uint64_t dropped = output.gate.take_report(output.sink.queued(), final);
    if (dropped > 0) {
        spdlog::warn("dropped {} line{} of worker output: {} did not keep up (--log-overflow drop)", dropped,
                     dropped == 1 ? "" : "s", output.name);
    }
    if (output.own_dropped > 0 && (final || output.sink.queued() == 0)) report_own_dropped(output);
}

void Relay::Impl::report_own_dropped(Output& output) {
    const std::uint64_t dropped = output.own_dropped;
    output.own_dropped = 0;
    spdlog::warn("dropped {} message{} of preforkctl's own: {} did not keep up", dropped, dropped == 1 ? "" : "s",
                 output.name);
}

// Returns true when the pipe is at its end (a retired pipe nobody writes to any more).
bool Relay::Impl::drain(Stream& stream) {
    const std::string_view timestamp = timestamp_now();
    bool at_end = false;
    for (std::size_t total = 0; total < kDrainLimit;) {
        const ssize_t n = ::read(stream.reader.native_handle(), buffer_.data(), buffer_.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            at_end = n == 0;
            break;
        }
        stream.framer.feed(std::string_view(buffer_.data(), static_cast<std::size_t>(n)),
                           std::chrono::steady_clock::now(),
                           [&](const Line& line) { add_line(stream, line, timestamp); });
        total += static_cast<std::size_t>(n);
    }
    // The dead worker's unterminated last line is its own: it must not merge with the next worker's.
    stream.framer.flush([&](const Line& line) { add_line(stream, line, timestamp); });
    return at_end;
}

void Relay::Impl::close_retired(Stream& stream) {
    stream.framer.flush([&](const Line& line) { add_line(stream, line, timestamp_now()); });
    if (!finishing_) schedule_flush(stream.output);
    boost::system::error_code ignored;
    stream.reader.close(ignored);  // a pending wait completes as cancelled
    stream.done = true;
    pipe_budget_left_ += stream.grown;
    stream.grown = 0;
}

// Frees the closed retired pipes that nothing refers to any more. Called from outside their handlers.
void Relay::Impl::free_closed() {
    std::erase_if(retired_, [](const auto& stream) { return stream->done && !stream->busy && !stream->paused; });
}

Result<std::unique_ptr<Relay::Impl::Stream>> Relay::Impl::make_stream(int slot, logrelay::Stream which) {
    auto pipe = sys::make_pipe();
    if (!pipe) return pipe.error();
    if (auto status = sys::set_nonblocking(pipe->read_end.get(), true); !status) return status.error();
    // Pipes grow once they are found full (see pipe_sizing.hpp); they start at the kernel's default.
    const int capacity = ::fcntl(pipe->read_end.get(), F_GETPIPE_SZ);
    Output& output = which == logrelay::Stream::out ? *stdout_ : *stderr_;
    auto stream = std::make_unique<Stream>(io_, std::move(*pipe), slot, which, output, options_.max_line);
    stream->pipe_capacity = capacity > 0 ? static_cast<std::size_t>(capacity) : 0;
    return stream;
}

void Relay::Impl::finish_output(Output& output) {
    // The event loop is over: wait for the reader here, but only while it keeps taking data.
    const auto stall = static_cast<int>(options_.exit_stall_limit.count());
    for (;;) {
        const WriteOutcome outcome = output.sink.write_some();
        if (outcome != WriteOutcome::would_block) return;
        if (!output.sink.wait_writable(stall)) {
            const std::size_t left = output.sink.queued();
            output.sink = OutputSink();  // give up: the rest is discarded
            if (&output != stderr_) {
                spdlog::warn("{} took nothing for {} ms: {} bytes of worker output were not written", output.name,
                             stall, left);
            }
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
Relay::Relay(asio::io_context& io, RelayOptions options, int out_fd, int err_fd)
    : impl_(std::make_unique<Impl>(io, std::move(options), out_fd, err_fd)) {
    auto logger = spdlog::default_logger();
    impl_->saved_sinks_ = logger->sinks();
    auto sink = std::make_shared<QueueSink>(*impl_);
    sink->set_formatter(
        own_message_formatter(impl_->options_.format == Format::json ? OwnFormat::json : OwnFormat::text));
    logger->sinks() = {sink};
    impl_->warn_if_not_reopened();
}

Relay::~Relay() { spdlog::default_logger()->sinks() = impl_->saved_sinks_; }

Status Relay::open_slot(int slot) {
    if (!impl_->options_.pipes || impl_->stream(slot, Stream::out) != nullptr) return Ok{};
    const std::size_t after = Impl::index_of(slot, Stream::err) + 1;
    if (impl_->streams_.size() < after) impl_->streams_.resize(after);
    for (const Stream which : {Stream::out, Stream::err}) {
        auto stream = impl_->make_stream(slot, which);
        if (!stream) return stream.error();
        Impl::Stream& started = **stream;
        impl_->streams_[Impl::index_of(slot, which)] = std::move(*stream);
        impl_->wait_readable(started);
    }
    return Ok{};
}

Status Relay::separate_next_worker(int slot) {
    Impl& impl = *impl_;
    impl.free_closed();
    if (!impl.options_.pipes || impl.stream(slot, Stream::out) == nullptr) return Ok{};
    auto out = impl.make_stream(slot, Stream::out);
    if (!out) return out.error();
    auto err = impl.make_stream(slot, Stream::err);
    if (!err) return err.error();
    for (auto* fresh : {&*out, &*err}) {
        std::unique_ptr<Impl::Stream>& place = impl.streams_[Impl::index_of(slot, (*fresh)->kind)];
        // The running worker keeps writing to its pipe: we only close our write end, so that the pipe ends
        // when that worker and whatever inherited it from it are gone.
        place->write_end.reset();
        place->retired = true;
        impl.retired_.push_back(std::move(place));
        place = std::move(*fresh);
        impl.wait_readable(*place);
    }
    return Ok{};
}

int Relay::worker_stdout(int slot) const {
    const Impl::Stream* stream = impl_->stream(slot, Stream::out);
    return stream != nullptr ? stream->write_end.get() : STDOUT_FILENO;
}

int Relay::worker_stderr(int slot) const {
    const Impl::Stream* stream = impl_->stream(slot, Stream::err);
    return stream != nullptr ? stream->write_end.get() : STDERR_FILENO;
}

void Relay::worker_started(int slot, int pid) {
    for (const Stream which : {Stream::out, Stream::err}) {
        if (Impl::Stream* stream = impl_->stream(slot, which)) stream->pid = pid;
    }
}

void Relay::worker_exited(int slot, int pid) {
    Impl& impl = *impl_;
    impl.free_closed();
    impl.for_each_stream([&](Impl::Stream& stream) {
        if (stream.slot != slot || stream.pid != pid) return;
        // Only a retired pipe can reach its end: the slot's current ones have our write end open. A retired
        // one that does not is still written by something the worker started.
        if (impl.drain(stream) && stream.retired) {
            impl.close_retired(stream);
        } else {
            impl.schedule_flush(stream.output);
        }
    });
}

void Relay::finish() {
    Impl& impl = *impl_;
    impl.finishing_ = true;
    impl.partial_timer_.cancel();
    impl.for_each_stream([&](Impl::Stream& stream) { impl.drain(stream); });
    impl.finish_output(*impl.stdout_);
    for (Impl::Output* output : {impl.stdout_.get(), impl.stderr_}) {
        impl.report(*output, true);
        output->lost_to_closed += output->sink.discarded_lines();
        if (output->lost_to_closed > 0) {
            spdlog::warn("{} line{} of worker output could not be written to a closed {}", output->lost_to_closed,
                         output->lost_to_closed == 1 ? "" : "s", output->name);
            output->lost_to_closed = 0;
        }
    }
    impl.finish_output(*impl.stderr_);
    // From here on preforkctl's messages go straight to stderr again.
    spdlog::default_logger()->sinks() = impl.saved_sinks_;
}

}  // namespace preforkctl::logrelay
