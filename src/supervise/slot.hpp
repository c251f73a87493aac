#pragma once
// The per-slot state machine: transition(state, event, now) -> {state, commands}. Pure; the supervisor
// executes the commands.

#include <string>
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

struct SlotState {
    Phase phase = Phase::idle;
    int pid = 0;
    bool ready = false;     // the running worker passed its readiness check (--ready)
    int retiring_pid = 0;   // rolling restart: the previous worker, stopped once `pid` is ready
    TimePoint started_at{};
    RestartHistory history;
    ExitInfo last_exit;
};

namespace event {
struct Start {};                          // supervisor start-up, or a slot added with SIGTTIN
struct Spawned { int pid; };              // the worker was exec'd
struct SpawnFailed { std::string why; };  // fork or child set-up failed (not an exec error: that ends everything)
struct Ready { int pid; };                // the worker is ready (--ready: at once, after a delay, or READY=1)
struct ReadyTimeout { int pid; };         // --ready notify: no READY=1 within --ready-timeout
struct Exited { int pid; ExitInfo exit; };  // waitpid reported a worker of this slot (current or retiring)
struct RestartDue {};                     // the restart timer fired
struct Replace {};                        // rolling restart: start a new worker beside the current one
struct RetireOverdue { int pid; };        // the retiring worker outlived --stop-timeout
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
struct ArmRetireDeadline { int pid; };  // SIGKILL the retiring worker if it outlives --stop-timeout
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

/// True when the slot has no worker and none will come (done or parked).
bool is_settled(const SlotState& state);

}  // namespace preforkctl::supervise
