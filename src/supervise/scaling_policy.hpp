#pragma once
// How many workers a scale request leads to (ctl scale N|+N|-N, SIGTTIN, SIGTTOU), or why it is refused. Pure.

#include <string>

#include "control/protocol.hpp"
#include "plan/plan.hpp"
#include "sys/result.hpp"

namespace preforkctl::supervise {

/// "1 worker", "4 workers".
std::string workers_text(long count);

/// The worker count `request` asks for when `live` workers run: at least 1, at most plan::kMaxWorkers, and
/// (when growing) within the descriptors preforkctl may open (plan.fd_limit, 0: unknown). An error is the
/// refusal's one sentence.
Result<int> decide_scale(const control::request::Scale& request, int live, const plan::Plan& plan);

}  // namespace preforkctl::supervise
