#include "supervise/scaling_policy.hpp"

#include <string>

namespace preforkctl::supervise {

std::string workers_text(long count) { return std::to_string(count) + (count == 1 ? " worker" : " workers"); }

Result<int> decide_scale(const control::request::Scale& request, int live, const plan::Plan& plan) {
    using Kind = control::request::Scale::Kind;
    const long wanted = request.kind == Kind::to   ? request.count
                        : request.kind == Kind::up ? long{live} + request.count
                                                   : long{live} - request.count;
    if (plan.elastic && (wanted < plan.elastic->min || wanted > plan.elastic->max)) {
        return Error{"the worker count is elastic (-n " + std::to_string(plan.elastic->min) + ".." +
                     std::to_string(plan.elastic->max) + "): cannot scale to " + std::to_string(wanted)};
    }
    if (wanted < 1 && !plan.elastic) {
        return Error{live == 1 ? "one worker is the minimum; not removing it"
                               : "one worker is the minimum; cannot scale to " + std::to_string(wanted)};
    }
    if (wanted > plan::kMaxWorkers) {
        return Error{"at most " + std::to_string(plan::kMaxWorkers) + " workers; cannot scale to " +
                     std::to_string(wanted)};
    }
    const auto target = static_cast<int>(wanted);
    const std::uint64_t needed = plan::estimate_descriptors(plan, target);
    if (target > live && plan.fd_limit > 0 && needed > plan.fd_limit) {
        return Error{workers_text(target) + " need about " + std::to_string(needed) +
                     " file descriptors, but preforkctl may open only " + std::to_string(plan.fd_limit) +
                     " (RLIMIT_NOFILE)"};
    }
    return target;
}

}  // namespace preforkctl::supervise
