#pragma once
// supervise(): the one event loop. Starts every slot, reaps, restarts, relays output, stops on signals.

#include <vector>

#include "net/listeners.hpp"
#include "plan/plan.hpp"

namespace preforkctl::supervise {

/// Runs the workers of `plan` until a stop signal, a fatal failure, or until every slot has ended.
/// Workers start in `workdir_fd` (the caller's working directory; -1: wherever preforkctl is).
/// Returns preforkctl's exit status (see ExitCode and the man page).
int supervise(const plan::Plan& plan, net::ListenerSet& listeners, int workdir_fd);

}  // namespace preforkctl::supervise
