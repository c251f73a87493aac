#pragma once
// The per-slot state machine: transition(state, event, now) -> {state, commands}. Pure; the supervisor
// executes the commands.

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "supervise/restart_policy.hpp"

namespace preforkctl::supervise {

enum class Phase {
    idle,             // never started
    starting,         // spawn requested, pid not known yet
    running,          // a worker runs
    waiting_restart,  // worker died; restart timer armed
    stopping,         // stop signal sent; waiting for the worker to exit
    parked,           // threshold reached with --on-threshold park: stays down
    done,             // ended for good (stopped, or not restarted by policy)
};

const char* to_text(Phase phase);
/// The phase to_text() names; nullopt for any other text.
std::optional<Phase> phase_from_text(std::string_view text);

/// A slot holds up to three kinds of worker, each described only while that process exists (a pid is
/// forgotten when it is reaped, never earlier, never later):
/// - the current worker (`pid`), which the phase and the restart policy are about;
/// - during this slot's step of a rolling restart, the worker being replaced (`previous_pid`): it serves
///   until the current one is ready, and is kept when the current one fails first;
/// - replaced workers that were told to stop and are finishing what they serve (`draining`).
struct SlotState {
    Phase phase = Phase::idle;
    int pid = 0;
    bool ready = false;     // the current worker passed its readiness check (--ready)
    TimePoint started_at{};
    bool replacing = false; // this slot's step of a rolling restart is under way (its ReplaceDone is due)
    int previous_pid = 0;   // the worker that step replaces, still serving; 0 when none (or it died)
    std::vector<int> draining;  // replaced workers told to stop, until each is reaped
    RestartHistory history;
    ExitInfo last_exit;
};

/// Every live worker of the slot: current, previous and draining ones.
std::vector<int> worker_pids(const SlotState& state);
/// True when `pid` is one of the slot's live workers.
bool has_worker(const SlotState& state, int pid);

namespace event {
struct Start {};                          // supervisor start-up, or a slot added with SIGTTIN
struct Spawned { int pid; };              // the worker was exec'd
struct SpawnFailed { std::string why; };  // the worker could not be started (at start-up a permanent failure ends everything instead)
struct Ready { int pid; };                // the worker is ready (--ready: at once, after a delay, or READY=1)
struct ReadyTimeout { int pid; };         // --ready notify: no READY=1 within --ready-timeout
struct Exited { int pid; ExitInfo exit; };  // waitpid reported a worker of this slot (current, previous or draining)
struct RestartDue {};                     // the restart timer fired
struct Replace {};                        // rolling restart: start a new worker beside the current one (a parked slot starts afresh)
struct RetireOverdue { int pid; };        // a draining worker outlived --stop-timeout
struct Stop {};                           // graceful stop of the slot (everything, or SIGTTOU)
struct Kill {};                           // stop timeout passed, or a second stop signal
}  // namespace event

using Event = std::variant<event::Start, event::Spawned, event::SpawnFailed, event::Ready, event::ReadyTimeout,
                           event::Exited, event::RestartDue, event::Replace, event::RetireOverdue, event::Stop,
                           event::Kill>;

namespace command {
struct Spawn {};
struct AwaitReady { int pid; };         // start the readiness check of a new worker (--ready)
struct ArmRestart { Millis delay; };
struct CancelRestart {};
struct SignalWorker { int pid; int signal; };  // to the worker's process group
struct ArmRetireDeadline { int pid; };  // SIGKILL the draining worker if it outlives --stop-timeout
struct ReplaceDone { bool replaced; };  // this slot's step of a rolling restart is over
enum class Level { debug, info, warning, error };
struct Log { Level level; std::string text; };
struct ThresholdExceeded {};            // with --on-threshold exit: stop everything, exit status 5
}  // namespace command

using Command = std::variant<command::Spawn, command::AwaitReady, command::ArmRestart, command::CancelRestart,
                             command::SignalWorker, command::ArmRetireDeadline, command::ReplaceDone, command::Log,
                             command::ThresholdExceeded>;

struct Transition {
    SlotState state;
    std::vector<Command> commands;
};

/// Decides the next state of one slot. `spec` gives the restart policy, `stop_signal` the graceful signal.
Transition transition(SlotState state, const Event& event, TimePoint now, const plan::RestartSpec& spec,
                      int stop_signal);

/// True when the slot has no worker left (none current, previous or draining) and none will come (done or parked).
bool is_settled(const SlotState& state);

}  // namespace preforkctl::supervise
