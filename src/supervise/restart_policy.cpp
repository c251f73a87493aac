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

RestartDecision decide_restart(const plan::RestartSpec& spec, RestartHistory& history, const ExitInfo& exit,
                               Millis uptime, TimePoint now) {
    if (spec.when == plan::RestartWhen::never || (spec.when == plan::RestartWhen::on_failure && exit.success())) {
        return {Verdict::stay_down, Millis{0}};
    }
    while (!history.recent.empty() && now - history.recent.front() >= spec.window) {
        history.recent.pop_front();
    }
    if (static_cast<int>(history.recent.size()) >= spec.max_restarts) {
        return {Verdict::threshold, Millis{0}};
    }
    if (history.next_delay.count() == 0 || uptime >= spec.min_uptime) {
        history.next_delay = spec.backoff_min;
    }
    const Millis delay = history.next_delay;
    history.next_delay = std::min(history.next_delay * 2, spec.backoff_max);
    history.recent.push_back(now);
    return {Verdict::restart, delay};
}

}  // namespace preforkctl::supervise
