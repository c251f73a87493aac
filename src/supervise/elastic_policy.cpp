#include "supervise/elastic_policy.hpp"

#include <algorithm>

#include "plan/durations.hpp"

namespace preforkctl::supervise {

Millis sample_period(const plan::ElasticSpec& spec) {
    const Millis shorter = std::min(spec.scale_up_after, spec.scale_down_after);
    return std::clamp(shorter / 4, Millis{10}, Millis{250});
}

namespace {

std::string waiting_text(std::uint32_t waiting) {
    return std::to_string(waiting) + (waiting == 1 ? " connection waits" : " connections wait");
}

void decide_busy(ElasticDecision& decision, std::uint32_t waiting, int live, TimePoint now,
                 const plan::ElasticSpec& spec) {
    ElasticState& state = decision.state;
    state.idle_since.reset();
    if (!state.busy_since) state.busy_since = now;
    if (live <= 0) {
        decision.step = ElasticStep::up;
        decision.reason = "on_demand";
        decision.why = waiting_text(waiting) + " and no worker runs";
        state.busy_since = now;
    } else if (live < spec.max && now - *state.busy_since >= spec.scale_up_after) {
        decision.step = ElasticStep::up;
        decision.reason = "load";
        decision.why = std::string("connections waited for ") + plan::format_duration(spec.scale_up_after) +
                       " (--scale-up-after); " + waiting_text(waiting);
        state.busy_since = now;
    }
    decision.next = NextLook{false, sample_period(spec)};
}

void decide_idle(ElasticDecision& decision, int live, bool woken, TimePoint now, const plan::ElasticSpec& spec) {
    ElasticState& state = decision.state;
    state.busy_since.reset();
    if (!state.idle_since) state.idle_since = now;
    int after = live;
    if (live > spec.min && now - *state.idle_since >= spec.scale_down_after) {
        decision.step = ElasticStep::down;
        decision.reason = "idle";
        decision.why = std::string("every accept queue was empty for ") + plan::format_duration(spec.scale_down_after) +
                       " (--scale-down-after)";
        state.idle_since = now;
        after = live - 1;
    }
    // Above MIN the idle time is being counted: sample. At MIN only a connection can change anything.
    const bool watch = after <= spec.min && !woken;
    decision.next = NextLook{watch, watch ? Millis{0} : sample_period(spec)};
}

}  // namespace

ElasticDecision decide_elastic(ElasticState state, std::uint32_t waiting, int live, bool woken, TimePoint now,
                               const plan::ElasticSpec& spec) {
    ElasticDecision decision;
    decision.state = state;
    if (waiting > 0) {
        decide_busy(decision, waiting, live, now, spec);
    } else {
        decide_idle(decision, live, woken, now, spec);
    }
    return decision;
}

}  // namespace preforkctl::supervise
