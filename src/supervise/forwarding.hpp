#pragma once
// What a signal that preforkctl forwards (plan::kForwardedSignals) becomes, and whom it reaches. Pure.

#include <optional>

#include "plan/plan.hpp"

namespace preforkctl::supervise {

/// One signal to send to every worker.
struct Forward {
    int signal = 0;
    bool to_group = true;  // the worker's whole process group, or only the worker process (--signal-scope)
};

/// The forward of `received` after --rewrite-signal; empty when it is dropped (FROM:0).
std::optional<Forward> forward_of(const plan::ForwardSpec& spec, int received);

}  // namespace preforkctl::supervise
