#pragma once
// Elastic workers (§12, -n MIN..MAX): from a sample of the listeners' accept queues, whether to add a
// worker, remove one or do nothing, and when to look at the queues again. Pure: time is a parameter.

#include <cstdint>
#include <optional>
#include <string>

#include "plan/plan.hpp"
#include "supervise/restart_policy.hpp"

namespace preforkctl::supervise {

/// What the decision remembers between samples.
struct ElasticState {
    std::optional<TimePoint> busy_since;  // first of the samples in a row that found a connection waiting
    std::optional<TimePoint> idle_since;  // first of the samples in a row that found every queue empty
};

enum class ElasticStep { none, up, down };

/// How preforkctl looks at the queues next: a sample after `delay`, or none until a listener is readable
/// (a connection arrived). Watching costs nothing while no connection comes: an idle preforkctl at MIN
/// does not wake at all.
struct NextLook {
    bool watch_readable = false;
    Millis delay{0};  // when not watching
};

struct ElasticDecision {
    ElasticState state;
    ElasticStep step = ElasticStep::none;
    std::string why;     // for the log: "a connection waits and no worker runs"
    std::string reason;  // for the counters: "on_demand", "load", "idle"
    NextLook next;
};

/// How often the queues are sampled while there is something to decide: a quarter of the shorter of the two
/// delays, from 10 ms to 250 ms.
Millis sample_period(const plan::ElasticSpec& spec);

/// The step after a sample that found `waiting` connections waiting over every listener, with `live` worker
/// slots (starting ones included). `woken` says the sample was taken because a listener became readable:
/// if nothing waits any more (a worker took the connection), the readability watch is re-armed only after a
/// sample period, so that a steady trickle of connections wakes preforkctl at most twice per period.
/// - Connections wait and no worker runs (on demand): one worker at once.
/// - Connections waited in every sample for scale_up_after: one more worker (below max), and the next step
///   needs another scale_up_after of waiting.
/// - Every queue was empty in every sample for scale_down_after: one fewer (above min), likewise.
ElasticDecision decide_elastic(ElasticState state, std::uint32_t waiting, int live, bool woken, TimePoint now,
                               const plan::ElasticSpec& spec);

}  // namespace preforkctl::supervise
