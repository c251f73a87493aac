// The writing half of the relay: preforkctl's stdout and stderr, written without ever blocking the event
// loop, with --log-overflow applied and what was dropped or lost reported.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <cstring>

#include "logrelay/relay_impl.hpp"

namespace preforkctl::logrelay {

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

}  // namespace preforkctl::logrelay
