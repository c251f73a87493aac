#include "supervise/restart_policy.hpp"

#include <algorithm>

#include "plan/durations.hpp"

namespace preforkctl::supervise {

std::string ExitInfo::describe() const {
    if (signaled) {
        return "was killed by " + plan::signal_name(value);
    }
    return "exited with status " + std::to_string(value);
}

bool is_success(const plan::RestartSpec& spec, const ExitInfo& exit) {
    return exit.success() || spec.success.matches(exit.signaled, exit.value);
}

RestartDecision decide_restart(const plan::RestartSpec& spec, RestartHistory& history,
                               const std::optional<ExitInfo>& exit, Millis uptime, TimePoint now) {
    if (exit && spec.prevent.matches(exit->signaled, exit->value)) {
        return {Verdict::stay_down, Millis{0}, "--restart-prevent"};
    }
    std::string reason;
    if (spec.when == plan::RestartWhen::never ||
        (spec.when == plan::RestartWhen::on_failure && exit && is_success(spec, *exit))) {
        const char* policy = spec.when == plan::RestartWhen::never ? "--restart never" : "--restart on-failure";
        if (!exit || !spec.force.matches(exit->signaled, exit->value)) return {Verdict::stay_down, Millis{0}, policy};
        reason = "--restart-force";
    }
    const auto inside = std::find_if(history.recent.begin(), history.recent.end(),
                                     [&](TimePoint at) { return now - at < spec.window; });
    history.recent.erase(history.recent.begin(), inside);
    if (static_cast<int>(history.recent.size()) >= spec.max_restarts) {
        return {Verdict::threshold, Millis{0}, reason};
    }
    if (history.next_delay.count() == 0 || uptime >= spec.min_uptime) {
        history.next_delay = spec.backoff_min;
    }
    const Millis delay = history.next_delay;
    history.next_delay = std::min(history.next_delay * 2, spec.backoff_max);
    history.recent.push_back(now);
    return {Verdict::restart, delay, reason};
}

}  // namespace preforkctl::supervise
