#pragma once
// supervise(): the one event loop. Starts every slot, reaps, restarts, relays output, stops on signals.

#include <functional>
#include <optional>
#include <vector>

#include "net/listeners.hpp"
#include "plan/plan.hpp"
#include "sys/result.hpp"

namespace preforkctl::supervise {

/// Re-reads the settings for a reload (SIGHUP, `ctl reload`): the plan they make now, nullopt when there is
/// no config file to re-read, or the error (file:line:col) that leaves everything as it is.
using Reread = std::function<Result<std::optional<plan::Plan>>()>;

/// Runs the workers of `plan` until a stop signal, a fatal failure, or until every slot has ended.
/// Workers start in `workdir_fd` (the caller's working directory; -1: wherever preforkctl is).
/// Returns preforkctl's exit status (see ExitCode and the man page).
int supervise(const plan::Plan& plan, net::ListenerSet& listeners, int workdir_fd, Reread reread = {});

}  // namespace preforkctl::supervise
