#pragma once
// supervise(): the one event loop. Starts every slot, reaps, restarts, relays output, stops on signals.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "net/listeners.hpp"
#include "plan/plan.hpp"
#include "sys/result.hpp"
#include "upgrade/state.hpp"

namespace preforkctl::supervise {

/// Re-reads the settings for a reload (SIGHUP, `ctl reload`): the plan they make now, nullopt when there is
/// neither a config file nor an env file to re-read, or the error (file:line[:col]) that leaves everything as
/// it is.
using Reread = std::function<Result<std::optional<plan::Plan>>()>;

/// How preforkctl was started: what `ctl upgrade` executes again (SPEC §14).
struct Invocation {
    std::vector<std::string> args;  // argv[1..], as given
    std::string executable;         // the running executable's path: the default --binary
    std::uint64_t fd_soft_limit = 0;  // RLIMIT_NOFILE's soft limit at the first start (before preforkctl raised it)
};

/// Runs the workers of `plan` until a stop signal, a fatal failure, or until every slot has ended.
/// Workers start in `workdir_fd` (the caller's working directory; -1: wherever preforkctl is).
/// `restored`: the state the previous image handed over in an upgrade; its workers run on, none is started.
/// Returns preforkctl's exit status (see ExitCode and the man page).
int supervise(const plan::Plan& plan, net::ListenerSet& listeners, int workdir_fd, Reread reread = {},
              Invocation invocation = {}, std::optional<upgrade::State> restored = std::nullopt);

}  // namespace preforkctl::supervise
