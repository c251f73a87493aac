#pragma once
// What a reload (SIGHUP, `ctl reload`) does with a re-read config file (SPEC §14): which settings the
// running preforkctl takes over and which keep their old value until a restart or an upgrade. Pure.

#include <string>
#include <vector>

#include "plan/plan.hpp"

namespace preforkctl::plan {

struct ReloadPlan {
    Plan next;                          // the running plan with every setting that can change live replaced
    std::vector<std::string> applied;   // changed settings taken over, by option ("--workers", "--env/--env-file", ...)
    std::vector<std::string> kept;      // changed settings that keep their old value (listeners, output, ...)
    bool workers_changed = false;       // next.workers differs: the supervisor scales to it
    // Shared sockets only (next.listeners is still the running set; the supervisor binds and closes):
    std::vector<std::size_t> listeners_added;        // indices of re-read listeners the running set lacks, to bind
    std::vector<std::size_t> listeners_removed;      // indices of running listeners the file no longer has
};

/// Compares the running plan with one made from the re-read settings. Taken over: the worker count (a fixed
/// one), the command, its environment (--env and the variables of the env files, read again), --user,
/// --chdir, --affinity and --cpus (the rolling restart that follows starts every worker with them), and the
/// policies read when something happens (restart, stop, signals, readiness, recycling, watchdog), and shared
/// listeners: one the file adds is to be bound before the rolling restart, one it drops closed after it
/// (matched by the --listen text). Kept: what is bound or set up once otherwise (the listeners of reuseport
/// and child mode or of a socket unit, socket mode, steering, output, control socket and metrics, elastic
/// bounds, the fd store).
ReloadPlan plan_reload(const Plan& running, const Plan& reread);

}  // namespace preforkctl::plan
