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
#include "logrelay/relay_impl.hpp"

namespace preforkctl::logrelay {

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
        const ssize_t n = ::read(stream.reader.native_handle(), buffer_.get(), kReadChunk);
        if (n > 0) {
            grow_pipe_after(stream, static_cast<std::size_t>(n));
            relay_bytes(stream, std::string_view(buffer_.get(), static_cast<std::size_t>(n)));
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
        // Counted in locals and added once per read. Each line of a bulk run ends with a '\n' that is not
        // part of its text: its bytes are what the run consumed less one per line.
        std::size_t run_lines = 0;
        std::size_t run_bytes = 0;
        std::size_t pieces = 0;
        std::size_t piece_bytes = 0;
        stream.framer.feed_bulk(
            bytes, now,
            [&](std::string_view run) {
                const std::size_t used = append_styled_lines(queue, style, run, stream.framer.max_line(), run_lines);
                run_bytes += used;
                return used;
            },
            [&](const Line& line) {
                append_styled(queue, style, line);
                ++pieces;
                piece_bytes += line.text.size();
            });
        stream.count.lines += run_lines + pieces;
        stream.count.bytes += run_bytes - run_lines + piece_bytes;
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
        ++stream.count.dropped_lines;
        return;
    }
    ++stream.count.lines;
    stream.count.bytes += line.text.size();
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

// Returns true when the pipe is at its end (a retired pipe nobody writes to any more).
bool Relay::Impl::drain(Stream& stream) {
    const std::string_view timestamp = timestamp_now();
    bool at_end = false;
    for (std::size_t total = 0; total < kDrainLimit;) {
        const ssize_t n = ::read(stream.reader.native_handle(), buffer_.get(), kReadChunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            at_end = n == 0;
            break;
        }
        stream.framer.feed(std::string_view(buffer_.get(), static_cast<std::size_t>(n)),
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
    StreamCount& count = which == logrelay::Stream::out ? counters_.out : counters_.err;
    auto stream = std::make_unique<Stream>(io_, std::move(*pipe), slot, which, output, count, options_.max_line);
    stream->pipe_capacity = capacity > 0 ? static_cast<std::size_t>(capacity) : 0;
    return stream;
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

std::string Relay::handover_blocker() const {
    for (const auto& stream : impl_->retired_) {
        if (!stream->done) {
            return "slot " + std::to_string(stream->slot) + "'s replaced worker (pid " + std::to_string(stream->pid) +
                   ") still writes to its own pipes";
        }
    }
    return "";
}

RelayHandover Relay::hand_over(std::chrono::milliseconds limit) {
    Impl& impl = *impl_;
    RelayHandover handover;
    for (Impl::Output* output : {impl.stdout_.get(), impl.stderr_}) {
        for (;;) {
            if (output->sink.write_some() != WriteOutcome::would_block) break;
            if (!output->sink.wait_writable(static_cast<int>(limit.count()))) break;
        }
    }
    handover.queued_stdout = impl.stdout_->sink.pending();
    if (impl.stderr_ != impl.stdout_.get()) handover.queued_stderr = impl.stderr_->sink.pending();
    for (const auto& stream : impl.streams_) {
        if (!stream) continue;
        PipeHandover pipe{stream->reader.native_handle(), stream->write_end.get(), stream->framer.partial(),
                          stream->framer.continuing(), stream->pid};
        auto& place = handover.slots[stream->slot];
        (stream->kind == Stream::out ? place.first : place.second) = std::move(pipe);
    }
    return handover;
}

Status Relay::adopt_slot(int slot, const PipeHandover& out, const PipeHandover& err) {
    Impl& impl = *impl_;
    if (!impl.options_.pipes) return Ok{};
    const std::size_t after = Impl::index_of(slot, Stream::err) + 1;
    if (impl.streams_.size() < after) impl.streams_.resize(after);
    for (const Stream which : {Stream::out, Stream::err}) {
        const PipeHandover& handed = which == Stream::out ? out : err;
        if (handed.read_fd < 0 || handed.write_fd < 0) return Error{"slot " + std::to_string(slot) + ": no pipe handed over"};
        for (const int fd : {handed.read_fd, handed.write_fd}) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        sys::Pipe pipe{sys::Fd(handed.read_fd), sys::Fd(handed.write_fd)};
        Impl::Output& output = which == Stream::out ? *impl.stdout_ : *impl.stderr_;
        StreamCount& count = which == Stream::out ? impl.counters_.out : impl.counters_.err;
        auto stream = std::make_unique<Impl::Stream>(impl.io_, std::move(pipe), slot, which, output, count,
                                                     impl.options_.max_line);
        const int capacity = ::fcntl(handed.read_fd, F_GETPIPE_SZ);
        stream->pipe_capacity = capacity > 0 ? static_cast<std::size_t>(capacity) : 0;
        stream->pid = handed.pid;
        stream->framer.restore(handed.partial, handed.continuing, std::chrono::steady_clock::now());
        Impl::Stream& started = *stream;
        impl.streams_[Impl::index_of(slot, which)] = std::move(stream);
        // Whatever the pipe holds was written while the loop was away: read it now.
        started.busy = true;
        asio::post(impl.io_, [&impl, &started] { impl.pump(started); });
    }
    if (!impl.partial_timer_armed_) impl.arm_partial_timer();
    return Ok{};
}

void Relay::queue_handed_over(std::string_view out, std::string_view err) {
    Impl& impl = *impl_;
    impl.stdout_->sink.queue().append(out);
    impl.stderr_->sink.queue().append(err);
    if (!out.empty()) impl.schedule_flush(*impl.stdout_);
    if (!err.empty()) impl.schedule_flush(*impl.stderr_);
}

RelayCounters Relay::counters() const { return impl_->counters_; }

void Relay::set_counters(const RelayCounters& counters) { impl_->counters_ = counters; }

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
