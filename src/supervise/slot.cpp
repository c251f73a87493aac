#include "supervise/slot.hpp"

#include <csignal>

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
Transition after_death(SlotState state, const ExitInfo& exit, const std::string& what, TimePoint now,
                       const plan::RestartSpec& spec) {
    const Millis uptime = state.phase == Phase::running
                              ? std::chrono::duration_cast<Millis>(now - state.started_at)
                              : Millis{0};
    state.pid = 0;
    state.last_exit = exit;
    const RestartDecision decision = decide_restart(spec, state.history, exit, uptime, now);
    switch (decision.verdict) {
        case Verdict::restart:
            state.phase = Phase::waiting_restart;
            return {state,
                    {command::Log{exit.success() ? Level::info : Level::warning,
                                  what + "; restarting in " + plan::format_duration(decision.delay)},
                     command::ArmRestart{decision.delay}}};
        case Verdict::stay_down:
            state.phase = Phase::done;
            return {state, {command::Log{exit.success() ? Level::info : Level::warning,
                                         what + "; not restarted (--restart " +
                                             (spec.when == plan::RestartWhen::never ? "never" : "on-failure") + ")"}}};
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
                state.started_at = now;
                return {state, {command::Log{Level::debug, "worker " + std::to_string(ev.pid) + " started"}}};
            } else if constexpr (std::is_same_v<E, event::SpawnFailed>) {
                return after_death(state, ExitInfo{false, 127}, ev.why, now, spec);
            } else if constexpr (std::is_same_v<E, event::Exited>) {
                const std::string what = "worker " + std::to_string(state.pid) + " " + ev.exit.describe();
                if (state.phase == Phase::stopping) {
                    state.phase = Phase::done;
                    state.pid = 0;
                    state.last_exit = ev.exit;
                    return {state, {command::Log{Level::debug, what}}};
                }
                if (state.phase != Phase::running) return {state, {}};
                return after_death(state, ev.exit, what, now, spec);
            } else if constexpr (std::is_same_v<E, event::Stop>) {
                switch (state.phase) {
                    case Phase::running:
                        state.phase = Phase::stopping;
                        return {state, {command::SignalWorker{stop_signal}, command::SignalWorker{SIGCONT}}};
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
                    return {state, {command::SignalWorker{SIGKILL}}};
                }
                return {state, {}};
            }
        },
        event);
}

}  // namespace preforkctl::supervise
