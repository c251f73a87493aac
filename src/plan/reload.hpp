#pragma once
// What a reload (SIGHUP, `ctl reload`) does with a re-read config file (SPEC §14): which settings the
// running preforkctl takes over and which keep their old value until a restart or an upgrade. Pure.

#include <string>
#include <vector>

#include "plan/plan.hpp"

namespace preforkctl::plan {

struct ReloadPlan {
    Plan next;                          // the running plan with every setting that can change live replaced
    std::vector<std::string> applied;   // changed settings taken over, by option ("--workers", "--env", ...)
    std::vector<std::string> kept;      // changed settings that keep their old value (listeners, output, ...)
    bool workers_changed = false;       // next.workers differs: the supervisor scales to it
};

/// Compares the running plan with one made from the re-read settings. Taken over: the worker count (a fixed
/// one), the command, its environment, --user, --chdir, --affinity and --cpus (the rolling restart that
/// follows starts every worker with them), and the policies read when something happens (restart, stop,
/// signals, readiness, recycling, watchdog). Kept: what is bound or set up once (listeners, socket mode,
/// steering, output, control socket and metrics, elastic bounds, the fd store).
ReloadPlan plan_reload(const Plan& running, const Plan& reread);

}  // namespace preforkctl::plan
