#pragma once
// The planners make_plan runs in turn, one per concern; each validates its settings and fills its part of
// the plan. Errors name the option (or file:line:col) as make_plan promises.

#include "config/settings.hpp"
#include "plan/host_facts.hpp"
#include "plan/plan.hpp"
#include "sys/result.hpp"

namespace preforkctl::plan {

/// CPU budget, worker count, --affinity and --cpus (§4).
Status plan_cpus_and_workers(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// Socket mode, listeners (given or adopted from systemd) and --fd-env (§5).
Status plan_sockets(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// -n MIN..MAX: the scaling timings, and the listeners elastic workers need (after plan_sockets); warns about
/// timings given with a fixed count.
Status plan_elastic(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// --user: the workers' credentials, and whether preforkctl may switch to them.
Status plan_user(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// Restart, stop, forwarding and readiness policy (§6, §7); warns about a --ready-timeout without notify.
Status plan_restart_and_stop(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// --max-rss, --max-lifetime, --lifetime-jitter and --watchdog (§12); warns about a jitter without a lifetime.
Status plan_recycle_and_watchdog(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// Output format, colour, line length, overflow and name (§8).
Status plan_output(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// --control and --metrics (§11); needs the name planned (plan_output).
Status plan_control(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// The workers' --chdir (checked to be a directory) and environment (§3): preforkctl's own, then the
/// --env-file variables, then --env.
Status plan_environment(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// --preload: the library's path (not found: an error), and warnings for a static or set-id command.
Status plan_preload(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// --fd-store (or systemd's $FDSTORE): whether the shared listeners go to systemd's fd store. Needs the
/// sockets and the environment (preforkctl's own NOTIFY_SOCKET) planned.
Status plan_fd_store(const config::Settings& settings, const HostFacts& facts, Plan& plan);

/// The descriptors preforkctl needs for its workers against RLIMIT_NOFILE, and the limit workers get back.
/// Needs the workers, listeners, socket mode, readiness and output format planned.
Status plan_descriptors(const config::Settings& settings, const HostFacts& facts, Plan& plan);

}  // namespace preforkctl::plan
