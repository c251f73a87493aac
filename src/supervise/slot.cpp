#include "supervise/slot.hpp"

#include <algorithm>
#include <csignal>
#include <initializer_list>

#include "plan/durations.hpp"

namespace preforkctl::supervise {

const char* to_text(Phase phase) {
    switch (phase) {
        case Phase::idle: return "idle";
        case Phase::starting: return "starting";
        case Phase::running: return "running";
        case Phase::waiting_restart: return "waiting to restart";
        case Phase::stopping: return "stopping";
        case Phase::parked: return "parked";
        case Phase::done: return "done";
    }
    return "?";
}

std::optional<Phase> phase_from_text(std::string_view text) {
    for (const Phase phase : {Phase::idle, Phase::starting, Phase::running, Phase::waiting_restart, Phase::stopping,
                              Phase::parked, Phase::done}) {
        if (text == to_text(phase)) return phase;
    }
    return std::nullopt;
}

std::vector<int> worker_pids(const SlotState& state) {
    std::vector<int> pids;
    if (state.pid > 0) pids.push_back(state.pid);
    if (state.previous_pid > 0) pids.push_back(state.previous_pid);
    pids.insert(pids.end(), state.draining.begin(), state.draining.end());
    return pids;
}

bool has_worker(const SlotState& state, int pid) {
    if (pid <= 0) return false;
    return pid == state.pid || pid == state.previous_pid ||
           std::find(state.draining.begin(), state.draining.end(), pid) != state.draining.end();
}

bool is_settled(const SlotState& state) {
    return (state.phase == Phase::done || state.phase == Phase::parked) && state.pid == 0 &&
           state.previous_pid == 0 && state.draining.empty();
}

namespace {

using command::Level;

// A worker ended (or never started) while the slot was meant to be up: apply the restart policy.
// `exit` is empty when the worker could not be started at all.
Transition after_death(SlotState state, const std::optional<ExitInfo>& exit, const std::string& what,
                       TimePoint now, const plan::RestartSpec& spec) {
    const Millis uptime = state.phase == Phase::running
                              ? std::chrono::duration_cast<Millis>(now - state.started_at)
                              : Millis{0};
    state.pid = 0;
    state.ready = false;
    state.last_exit = exit.value_or(ExitInfo{false, 127});
    const RestartDecision decision = decide_restart(spec, state.history, exit, uptime, now);
    const Level level = exit && is_success(spec, *exit) ? Level::info : Level::warning;
    const std::string because = decision.reason.empty() ? "" : " (" + decision.reason + ")";
    switch (decision.verdict) {
        case Verdict::restart:
            state.phase = Phase::waiting_restart;
            return {state,
                    {command::Log{level, what + "; restarting in " + plan::format_duration(decision.delay) + because},
                     command::ArmRestart{decision.delay}}};
        case Verdict::stay_down:
            state.phase = Phase::done;
            return {state, {command::Log{level, what + "; not restarted" + because}}};
        case Verdict::threshold: {
            state.phase = spec.on_threshold == plan::OnThreshold::park ? Phase::parked : Phase::done;
            std::vector<Command> commands{command::Log{
                Level::error, what + "; more than " + std::to_string(spec.max_restarts) + " restarts in " +
                                  plan::format_duration(spec.window) +
                                  (state.phase == Phase::parked ? ", slot parked" : ", giving up")}};
            if (spec.on_threshold == plan::OnThreshold::exit) {
                commands.emplace_back(command::ThresholdExceeded{});
            }
            return {state, std::move(commands)};
        }
    }
    return {state, {}};
}

std::string worker(int pid) { return "worker " + std::to_string(pid); }

// This slot's step of a rolling restart failed: the new worker could not start or died before it was
// ready. The previous worker has kept serving all along; it stays the slot's worker, and the rolling
// restart stops here. When the previous worker is gone too, the slot goes through the restart policy.
Transition failed_replacement(SlotState state, const std::optional<ExitInfo>& exit, const std::string& what,
                              TimePoint now, const plan::RestartSpec& spec) {
    state.replacing = false;
    if (state.previous_pid == 0) {
        Transition next = after_death(std::move(state), exit, "rolling restart: " + what, now, spec);
        next.commands.emplace_back(command::ReplaceDone{false});
        return next;
    }
    const int previous = state.previous_pid;
    state.phase = Phase::running;
    state.pid = previous;
    state.ready = true;
    state.previous_pid = 0;
    return {state, {command::Log{Level::error, "rolling restart: " + what + "; keeping " + worker(previous)},
                    command::ReplaceDone{false}}};
}

// Stop and Kill reach every live worker of the slot.
std::vector<Command> signal_all(const SlotState& state, std::initializer_list<int> signals) {
    std::vector<Command> commands;
    for (int pid : worker_pids(state)) {
        for (int sig : signals) commands.emplace_back(command::SignalWorker{pid, sig});
    }
    return commands;
}

// Once the current worker has gone during a stop, the slot is done (is_settled also waits for the others).
void finish_stop(SlotState& state) {
    if (state.phase == Phase::stopping && state.pid == 0) state.phase = Phase::done;
}

Transition on_exit(SlotState state, const event::Exited& ev, TimePoint now, const plan::RestartSpec& spec) {
    const std::string what = worker(ev.pid) + " " + ev.exit.describe();
    if (ev.pid <= 0) return {state, {}};
    if (const auto it = std::find(state.draining.begin(), state.draining.end(), ev.pid); it != state.draining.end()) {
        state.draining.erase(it);
        return {state, {command::Log{Level::debug, "previous " + what}}};
    }
    if (ev.pid == state.previous_pid) {
        // It died while its replacement was starting: the replacement is all the slot has now.
        state.previous_pid = 0;
        finish_stop(state);
        const Level level = state.phase == Phase::stopping || state.phase == Phase::done ? Level::debug : Level::warning;
        return {state, {command::Log{level, "previous " + what + " during the rolling restart"}}};
    }
    if (ev.pid != state.pid) return {state, {}};
    if (state.phase == Phase::stopping) {
        state.pid = 0;
        state.last_exit = ev.exit;
        finish_stop(state);
        return {state, {command::Log{Level::debug, what}}};
    }
    if (state.phase != Phase::running) return {state, {}};
    if (state.replacing && !state.ready) {
        return failed_replacement(state, ev.exit, "new " + what + " before it was ready", now, spec);
    }
    return after_death(state, ev.exit, what, now, spec);
}

Transition on_ready(SlotState state, const event::Ready& ev, int stop_signal) {
    if (state.phase != Phase::running || ev.pid != state.pid || state.ready) return {state, {}};
    state.ready = true;
    if (!state.replacing) return {state, {command::Log{Level::debug, worker(ev.pid) + " is ready"}}};
    state.replacing = false;
    const int previous = state.previous_pid;
    if (previous == 0) {
        return {state, {command::Log{Level::info, "rolling restart: new " + worker(ev.pid) + " is ready"},
                        command::ReplaceDone{true}}};
    }
    state.previous_pid = 0;
    state.draining.push_back(previous);
    return {state,
            {command::Log{Level::info,
                          "rolling restart: new " + worker(ev.pid) + " is ready; stopping " + worker(previous)},
             command::SignalWorker{previous, stop_signal}, command::SignalWorker{previous, SIGCONT},
             command::ArmRetireDeadline{previous}, command::ReplaceDone{true}}};
}

Transition on_replace(SlotState state) {
    switch (state.phase) {
        case Phase::running:
            // A worker that is not ready yet is replaced too: it runs the old generation.
            if (state.replacing) return {state, {command::ReplaceDone{true}}};
            state.replacing = true;
            state.previous_pid = state.pid;
            state.pid = 0;
            state.ready = false;
            state.phase = Phase::starting;
            return {state, {command::Log{Level::info, "rolling restart: starting a new worker beside " +
                                                          worker(state.previous_pid)},
                            command::Spawn{}}};
        case Phase::parked:
            // The fix-and-reload path after a crash loop: the slot starts again with a clean slate, and the
            // rolling restart goes on once its worker is ready (or stops if it fails again).
            state.replacing = true;
            state.history = RestartHistory{};
            state.phase = Phase::starting;
            return {state, {command::Log{Level::info, "rolling restart: starting the parked slot again"},
                            command::Spawn{}}};
        case Phase::idle:
        case Phase::starting:
        case Phase::waiting_restart:
        case Phase::stopping:
        case Phase::done:
            // Nothing to replace: a slot that is down starts its next worker with the new generation anyway.
            return {state, {command::ReplaceDone{true}}};
    }
    return {state, {command::ReplaceDone{true}}};
}

Transition on_stop(SlotState state, int stop_signal) {
    state.replacing = false;
    switch (state.phase) {
        case Phase::running:
            state.phase = Phase::stopping;
            return {state, signal_all(state, {stop_signal, SIGCONT})};
        case Phase::waiting_restart:
            // Draining workers already have the stop signal; the slot is settled once they are reaped.
            state.phase = Phase::done;
            return {state, {command::CancelRestart{}}};
        case Phase::idle:
            state.phase = Phase::done;
            return {state, {}};
        case Phase::starting:
        case Phase::stopping:
        case Phase::parked:
        case Phase::done:
            return {state, {}};
    }
    return {state, {}};
}

}  // namespace

Transition transition(SlotState state, const Event& event, TimePoint now, const plan::RestartSpec& spec,
                      int stop_signal) {
    return std::visit(
        [&](const auto& ev) -> Transition {
            using E = std::decay_t<decltype(ev)>;
            if constexpr (std::is_same_v<E, event::Start>) {
                if (state.phase != Phase::idle) return {state, {}};
                state.phase = Phase::starting;
                return {state, {command::Spawn{}}};
            } else if constexpr (std::is_same_v<E, event::RestartDue>) {
                if (state.phase != Phase::waiting_restart) return {state, {}};
                state.phase = Phase::starting;
                return {state, {command::Spawn{}}};
            } else if constexpr (std::is_same_v<E, event::Spawned>) {
                state.phase = Phase::running;
                state.pid = ev.pid;
                state.ready = false;
                state.started_at = now;
                return {state, {command::Log{Level::debug, worker(ev.pid) + " started"}, command::AwaitReady{ev.pid}}};
            } else if constexpr (std::is_same_v<E, event::SpawnFailed>) {
                if (state.replacing) {
                    return failed_replacement(state, std::nullopt, "cannot start a new worker: " + ev.why, now, spec);
                }
                return after_death(state, std::nullopt, ev.why, now, spec);
            } else if constexpr (std::is_same_v<E, event::Ready>) {
                return on_ready(state, ev, stop_signal);
            } else if constexpr (std::is_same_v<E, event::ReadyTimeout>) {
                if (state.phase != Phase::running || ev.pid != state.pid || state.ready) return {state, {}};
                // Not ready in time is a failed start: the worker is killed and its exit goes through the
                // restart policy like any crash.
                return {state, {command::Log{Level::warning, worker(ev.pid) + " did not report READY=1 in time; "
                                                                              "killing it (failed start)"},
                                command::SignalWorker{ev.pid, SIGKILL}}};
            } else if constexpr (std::is_same_v<E, event::Exited>) {
                return on_exit(state, ev, now, spec);
            } else if constexpr (std::is_same_v<E, event::Replace>) {
                return on_replace(state);
            } else if constexpr (std::is_same_v<E, event::RetireOverdue>) {
                if (std::find(state.draining.begin(), state.draining.end(), ev.pid) == state.draining.end()) {
                    return {state, {}};
                }
                return {state, {command::Log{Level::warning, "previous " + worker(ev.pid) +
                                                                 " outlived the stop timeout; killing it"},
                                command::SignalWorker{ev.pid, SIGKILL}}};
            } else if constexpr (std::is_same_v<E, event::Stop>) {
                return on_stop(state, stop_signal);
            } else {
                static_assert(std::is_same_v<E, event::Kill>);
                // Every live worker is killed, whatever the phase (draining ones outlive a finished slot).
                if (state.phase == Phase::running) state.phase = Phase::stopping;
                return {state, signal_all(state, {SIGKILL})};
            }
        },
        event);
}

}  // namespace preforkctl::supervise
