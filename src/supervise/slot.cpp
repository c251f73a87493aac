#include "supervise/slot.hpp"

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

bool is_settled(const SlotState& state) { return state.phase == Phase::done || state.phase == Phase::parked; }

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

// Rolling restart: the new worker could not start or died before it was ready. The previous worker has
// kept serving all along; it stays, and the rolling restart stops here.
Transition keep_previous_worker(SlotState state, const std::string& what) {
    const int previous = state.retiring_pid;
    state.phase = Phase::running;
    state.pid = previous;
    state.ready = true;
    state.retiring_pid = 0;
    return {state, {command::Log{Level::error, "rolling restart: " + what + "; keeping " + worker(previous)},
                    command::ReplaceDone{false}}};
}

// Stop and Kill reach the current worker and, during a rolling restart, the previous one too.
std::vector<Command> signal_all(const SlotState& state, std::initializer_list<int> signals) {
    std::vector<Command> commands;
    for (int pid : {state.pid, state.retiring_pid}) {
        if (pid <= 0) continue;
        for (int sig : signals) commands.emplace_back(command::SignalWorker{pid, sig});
    }
    return commands;
}

Transition on_exit(SlotState state, const event::Exited& ev, TimePoint now, const plan::RestartSpec& spec) {
    const std::string what = worker(ev.pid) + " " + ev.exit.describe();
    if (ev.pid == state.retiring_pid) {
        state.retiring_pid = 0;
        if (state.phase == Phase::stopping && state.pid == 0) state.phase = Phase::done;
        return {state, {command::Log{Level::debug, "previous " + what}}};
    }
    if (ev.pid != state.pid || ev.pid == 0) return {state, {}};
    if (state.phase == Phase::stopping) {
        state.pid = 0;
        state.last_exit = ev.exit;
        if (state.retiring_pid == 0) state.phase = Phase::done;
        return {state, {command::Log{Level::debug, what}}};
    }
    if (state.phase != Phase::running) return {state, {}};
    if (state.retiring_pid != 0 && !state.ready) {
        return keep_previous_worker(state, "new " + what + " before it was ready");
    }
    return after_death(state, ev.exit, what, now, spec);
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
                if (state.retiring_pid != 0) return keep_previous_worker(state, "cannot start a new worker: " + ev.why);
                return after_death(state, std::nullopt, ev.why, now, spec);
            } else if constexpr (std::is_same_v<E, event::Ready>) {
                if (state.phase != Phase::running || ev.pid != state.pid || state.ready) return {state, {}};
                state.ready = true;
                if (state.retiring_pid == 0) return {state, {command::Log{Level::debug, worker(ev.pid) + " is ready"}}};
                const int previous = state.retiring_pid;
                return {state,
                        {command::Log{Level::info, "rolling restart: new " + worker(ev.pid) + " is ready; stopping " +
                                                       worker(previous)},
                         command::SignalWorker{previous, stop_signal}, command::SignalWorker{previous, SIGCONT},
                         command::ArmRetireDeadline{previous}, command::ReplaceDone{true}}};
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
                // A worker that is not ready yet is replaced too: it runs the old generation.
                if (state.phase != Phase::running || state.retiring_pid != 0) {
                    // Nothing to replace: a slot that is down starts its next worker with the new generation anyway.
                    return {state, {command::ReplaceDone{true}}};
                }
                state.retiring_pid = state.pid;
                state.pid = 0;
                state.ready = false;
                state.phase = Phase::starting;
                return {state, {command::Log{Level::info, "rolling restart: starting a new worker beside " +
                                                              worker(state.retiring_pid)},
                                command::Spawn{}}};
            } else if constexpr (std::is_same_v<E, event::RetireOverdue>) {
                if (ev.pid != state.retiring_pid || ev.pid == 0) return {state, {}};
                return {state, {command::Log{Level::warning, "previous " + worker(ev.pid) +
                                                                 " outlived the stop timeout; killing it"},
                                command::SignalWorker{ev.pid, SIGKILL}}};
            } else if constexpr (std::is_same_v<E, event::Stop>) {
                switch (state.phase) {
                    case Phase::running:
                        state.phase = Phase::stopping;
                        return {state, signal_all(state, {stop_signal, SIGCONT})};
                    case Phase::waiting_restart:
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
            } else {
                static_assert(std::is_same_v<E, event::Kill>);
                if (state.phase == Phase::stopping || state.phase == Phase::running) {
                    state.phase = Phase::stopping;
                    return {state, signal_all(state, {SIGKILL})};
                }
                return {state, {}};
            }
        },
        event);
}

}  // namespace preforkctl::supervise
