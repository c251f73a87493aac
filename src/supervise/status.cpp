// The status snapshot (ctl status, metrics): built on request only, never on a timer, so that an idle
// preforkctl does not wake up. Reading /proc for the workers' memory and CPU happens here, per request.
#include <unistd.h>

#include <algorithm>

#include "plan/cpus.hpp"
#include "plan/durations.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/accept_queue.hpp"
#include "sys/proc_usage.hpp"

namespace preforkctl::supervise {

namespace {

double seconds_between(TimePoint from, TimePoint to) { return std::chrono::duration<double>(to - from).count(); }

const char* state_of(const SlotRuntime& slot) {
    switch (slot.state.phase) {
        case Phase::idle:
        case Phase::starting: return "starting";
        case Phase::running: return slot.state.ready ? "ready" : "starting";
        case Phase::waiting_restart: return "backoff";
        case Phase::stopping: return slot.removing ? "draining" : "stopping";
        case Phase::parked: return "parked";
        case Phase::done: return "stopped";
    }
    return "stopped";
}

std::string command_line(const std::vector<std::string>& command) {
    std::string line;
    for (const std::string& word : command) line += (line.empty() ? "" : " ") + word;
    return line;
}

const char* mode_name(plan::SocketMode mode) {
    switch (mode) {
        case plan::SocketMode::shared: return "shared";
        case plan::SocketMode::reuseport: return "reuseport";
        case plan::SocketMode::child: return "child";
    }
    return "shared";
}

control::ListenerStatus listener_status(const net::Listener& listener, plan::SocketMode mode, int slot) {
    control::ListenerStatus status;
    status.name = listener.spec.name;
    status.address = listener.address();
    status.mode = mode_name(mode);
    status.slot = slot;
    if (const auto queue = sys::read_accept_queue(listener.fd.get())) {
        status.queue = queue->queue;
        status.backlog = queue->backlog;
    }
    return status;
}

}  // namespace

control::Snapshot Supervisor::snapshot() const {
    const TimePoint now = Clock::now();
    control::Snapshot snapshot;
    snapshot.name = plan_.log.name;
    snapshot.version = PREFORKCTL_VERSION;
    snapshot.pid = static_cast<int>(::getpid());
    snapshot.uptime_seconds = seconds_between(started_at_, now);
    snapshot.command = command_line(plan_.command);
    snapshot.workers = live_slots();
    snapshot.generation = generation_;
    snapshot.rolling = rolling_;
    snapshot.stopping = stopping_;
    snapshot.rolling_restarts = rolling_replaced_;
    snapshot.scale_ups = scale_ups_;
    snapshot.scale_downs = scale_downs_;
    snapshot.scale_up_reasons = scaled_up_by_;
    snapshot.scale_down_reasons = scaled_down_by_;
    if (plan_.elastic) snapshot.elastic = control::ElasticStatus{plan_.elastic->min, plan_.elastic->max};
    snapshot.recycles = recycles_;
    snapshot.watchdog_timeouts = watchdog_timeouts_;
    snapshot.upgrades = upgrades_;

    std::vector<int> roots;
    for (const auto& slot : slots_) {
        if (slot->state.pid > 0) roots.push_back(slot->state.pid);
    }
    const std::map<int, sys::TreeUsage> usage = sys::read_tree_usage(roots);

    for (const auto& slot : slots_) {
        control::SlotStatus status;
        status.slot = slot->spec.slot;
        status.pid = slot->state.pid;
        status.cpus = slot->spec.cpus.empty() ? "" : plan::format_cpu_list(slot->spec.cpus);
        status.state = state_of(*slot);
        status.ready = slot->state.phase == Phase::running && slot->state.ready;
        if (slot->state.pid > 0) status.uptime_seconds = seconds_between(slot->state.started_at, now);
        status.restarts_in_window = static_cast<int>(std::count_if(
            slot->state.history.recent.begin(), slot->state.history.recent.end(),
            [&](TimePoint at) { return now - at < plan_.restart.window; }));
        status.restarts_total = slot->restarts_total;
        status.restarts_by_reason = slot->restarts_by_reason;
        if (slot->last_exit_at) {
            const ExitInfo& exit = slot->state.last_exit;
            control::LastExit last;
            last.signaled = exit.signaled;
            last.value = exit.value;
            last.text = exit.signaled ? plan::signal_name(exit.value) : "exit " + std::to_string(exit.value);
            last.seconds_ago = seconds_between(*slot->last_exit_at, now);
            status.last_exit = last;
        }
        if (const auto found = usage.find(slot->state.pid); found != usage.end()) {
            status.usage = control::TreeUsage{found->second.rss_bytes, found->second.cpu_seconds,
                                              found->second.processes};
            if (status.uptime_seconds > 0) {
                status.cpu_percent = 100.0 * found->second.cpu_seconds / status.uptime_seconds;
            }
        }
        status.generation = slot->generation;
        for (const int pid : worker_pids(slot->state)) {
            if (pid != slot->state.pid) status.draining.push_back(pid);
        }
        snapshot.slots.push_back(std::move(status));
    }

    for (const net::Listener& listener : listeners_.shared) {
        snapshot.listeners.push_back(listener_status(listener, plan_.socket_mode, -1));
    }
    for (std::size_t slot = 0; slot < listeners_.per_slot.size(); ++slot) {
        for (const net::Listener& listener : listeners_.per_slot[slot]) {
            snapshot.listeners.push_back(listener_status(listener, plan_.socket_mode, static_cast<int>(slot)));
        }
    }
    if (plan_.socket_mode == plan::SocketMode::child) {
        for (std::size_t i = 0; i < plan_.listeners.size(); ++i) {
            control::ListenerStatus status;
            status.name = plan_.listeners[i].name;
            status.address = plan::format_address(plan_.listeners[i], plan_.listeners[i].port);
            status.mode = "child";
            snapshot.listeners.push_back(status);
        }
    }

    const logrelay::RelayCounters counters = relay_.counters();
    snapshot.out = control::StreamCounters{counters.out.lines, counters.out.bytes, counters.out.dropped_lines};
    snapshot.err = control::StreamCounters{counters.err.lines, counters.err.bytes, counters.err.dropped_lines};
    return snapshot;
}

}  // namespace preforkctl::supervise
