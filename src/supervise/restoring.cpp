// The other half of ctl upgrade (SPEC §14): the new image takes over what the previous one handed over —
// control socket, metrics socket, every slot with its worker, history and pipes, the counters — re-registers
// it all in its event loop, and answers the client that asked for the upgrade. Timers restart from what was
// left of them. Workers that died while no image was looking are reaped by the first reap() after this.
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "control/reply.hpp"
#include "metrics/exposition.hpp"
#include "plan/durations.hpp"
#include "supervise/scaling_policy.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/reexec.hpp"

namespace preforkctl::supervise {

namespace {

TimePoint ms_before(TimePoint now, std::int64_t ms) { return now - std::chrono::milliseconds(ms); }

logrelay::PipeHandover pipe_handover(const upgrade::PipeState& pipe, int pid) {
    return {pipe.fd, pipe.write_fd, pipe.partial, pipe.continuing, pid};
}

std::uint64_t counter(const upgrade::State& state, const std::string& name) {
    const auto found = state.counters.find(name);
    return found == state.counters.end() ? 0 : found->second;
}

void close_fd(int fd) {
    if (fd >= 0) ::close(fd);
}

}  // namespace

void Supervisor::restore_counters(const upgrade::State& state) {
    const TimePoint now = Clock::now();
    started_at_ = ms_before(now, state.uptime_ms);
    generation_ = state.generation;
    rolling_replaced_ = counter(state, "rolling_replaced");
    scale_ups_ = counter(state, "scale_ups");
    scale_downs_ = counter(state, "scale_downs");
    watchdog_timeouts_ = counter(state, "watchdog_timeouts");
    upgrades_ = counter(state, "upgrades") + 1;
    for (const auto& [name, count] : state.counters) {
        const auto colon = name.find(':');
        if (colon == std::string::npos) continue;
        const std::string kind = name.substr(0, colon);
        const std::string reason = name.substr(colon + 1);
        if (kind == "scale_up") scaled_up_by_[reason] = count;
        if (kind == "scale_down") scaled_down_by_[reason] = count;
        if (kind == "recycle") recycles_[reason] = count;
    }
    logrelay::RelayCounters relayed;
    relayed.out = {counter(state, "out_lines"), counter(state, "out_bytes"), counter(state, "out_dropped")};
    relayed.err = {counter(state, "err_lines"), counter(state, "err_bytes"), counter(state, "err_dropped")};
    relay_.set_counters(relayed);
    inherited_.insert(state.inherited.begin(), state.inherited.end());
    output_readers_.insert(state.output_readers.begin(), state.output_readers.end());
    announced_ready_ = state.announced_ready;
    if (state.first_worker_failure >= 0) first_worker_failure_ = state.first_worker_failure;
    // What the previous image could not write yet comes before anything this one says.
    relay_.queue_handed_over(state.queued_stdout, state.queued_stderr);
}

// The sockets are taken over as they are; a control path or metrics setting that the config file changed is
// applied now (the one way such a setting changes without a restart).
Status Supervisor::restore_control_plane(const upgrade::State& state) {
    if (state.control_fd >= 0) {
        auto server = control::ControlServer::adopt(io_, state.control_path, state.control_fd, control_handler());
        if (!server) return server.error();
        control_ = std::move(*server);
        if (!plan_.control.socket || *plan_.control.socket != state.control_path) {
            spdlog::info("upgrade: the control socket moves from {} to {}", state.control_path,
                         plan_.control.socket.value_or("nowhere"));
            control_.reset();  // removes its socket file
        }
    }
    if (state.metrics_fd >= 0) {
        if (plan_.control.metrics) {
            auto server = metrics::MetricsServer::adopt(io_, state.metrics_fd,
                                                        [this] { return metrics::render_metrics(snapshot()); });
            if (!server) return server.error();
            metrics_ = std::move(*server);
        } else {
            close_fd(state.metrics_fd);
        }
    }
    return open_control_plane();
}

Status Supervisor::restore_slots(const upgrade::State& state) {
    const TimePoint now = Clock::now();
    for (const upgrade::SlotState& saved : state.slots) {
        const auto phase = phase_from_text(saved.phase);
        if (!phase) return Error{"slot " + std::to_string(saved.slot) + " has an unknown phase \"" + saved.phase + "\""};
        plan::SlotSpec spec = plan::make_slot_spec(plan_, saved.slot);
        spec.cpus = saved.cpus;  // where its worker runs now
        auto runtime = std::make_unique<SlotRuntime>(io_, spec);
        SlotRuntime& slot = *runtime;
        if (auto adopted = relay_.adopt_slot(saved.slot, pipe_handover(saved.out, saved.pid),
                                             pipe_handover(saved.err, saved.pid));
            !adopted) {
            return adopted.error();
        }
        SlotState& machine = slot.state;
        machine.phase = *phase;
        machine.pid = saved.pid;
        machine.ready = saved.ready;
        machine.started_at = ms_before(now, saved.started_ms_ago);
        for (const std::int64_t ago : saved.restarts_ms_ago) machine.history.recent.push_back(ms_before(now, ago));
        machine.history.next_delay = Millis{saved.next_delay_ms};
        if (saved.last_exit) {
            machine.last_exit = ExitInfo{saved.last_exit->signaled, saved.last_exit->value};
            slot.last_exit_at = ms_before(now, saved.last_exit->ms_ago);
        }
        slot.generation = saved.generation;
        slot.restarts_total = saved.restarts_total;
        slot.restarts_by_reason = saved.restarts_by_reason;
        slot.failure_reason = saved.failure_reason;
        slot.watchdog_interval = Millis{saved.watchdog_interval_ms};
        if (saved.notify_fd >= 0) {
            ::fcntl(saved.notify_fd, F_SETFD, FD_CLOEXEC);
            slot.notify = std::make_unique<asio::posix::stream_descriptor>(io_, saved.notify_fd);
            slot.notify_file = sys::SocketFile(sys::socket_file_of(saved.notify_fd));
            notify_directory_.adopt(slot.notify_file.path());
        }
        slots_.push_back(std::move(runtime));
        if (machine.phase == Phase::waiting_restart && saved.restart_in_ms >= 0) {
            slot.restart_timer.expires_after(Millis{saved.restart_in_ms});
            slot.restart_timer.async_wait([this, &slot](const boost::system::error_code& error) {
                if (!error) apply(slot, event::RestartDue{});
            });
        }
        if (machine.phase == Phase::running && machine.pid != 0) {
            read_notify(slot);
            if (machine.ready) arm_watchdog(slot, machine.pid);
            arm_lifetime(slot, machine.pid, Millis{saved.started_ms_ago});
        }
    }
    return Ok{};
}

void Supervisor::announce_upgrade(const upgrade::State& state) {
    const double away_ms = static_cast<double>(sys::monotonic_ns() - state.taken_at_ns) / 1e6;
    char away[32];
    std::snprintf(away, sizeof away, "%.1f", away_ms);
    const std::string message = "upgraded in place from " + state.from_version + " to " PREFORKCTL_VERSION " (pid " +
                                std::to_string(::getpid()) + ", " + workers_text(live_slots()) + " kept, " + away +
                                " ms away)";
    spdlog::info("{}", message);
    if (state.client_fd < 0) return;
    // The client that asked is still connected to the socket the previous image accepted: it gets the answer.
    const std::string line = control::encode_reply(control::Reply{true, message, std::nullopt, false}) + "\n";
    ::fcntl(state.client_fd, F_SETFL, ::fcntl(state.client_fd, F_GETFL) & ~O_NONBLOCK);
    std::string_view rest = line;
    while (!rest.empty()) {
        const ssize_t n = ::write(state.client_fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(state.client_fd);
}

}  // namespace preforkctl::supervise
