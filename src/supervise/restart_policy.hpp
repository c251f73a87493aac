#pragma once
// Restart policy (§6): whether a dead worker comes back, after how long, and when a slot gives up. Pure.

#include <chrono>
#include <deque>
#include <string>

#include "plan/plan.hpp"

namespace preforkctl::supervise {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using plan::Millis;

/// How a worker ended, as waitpid reported it.
struct ExitInfo {
    bool signaled = false;
    int value = 0;  // exit code, or signal number when signaled

    [[nodiscard]] bool success() const { return !signaled && value == 0; }
    /// The shell convention: code, or 128 + signal.
    [[nodiscard]] int as_status() const { return signaled ? 128 + value : value; }
    /// "exited with status 3" / "was killed by SIGKILL".
    [[nodiscard]] std::string describe() const;
};

/// Per-slot memory of recent restarts and the next backoff delay.
struct RestartHistory {
    std::deque<TimePoint> recent;  // restart times inside the window
    Millis next_delay{0};          // 0 = not started yet (MIN is used)
};

enum class Verdict { restart, stay_down, threshold };

struct RestartDecision {
    Verdict verdict = Verdict::stay_down;
    Millis delay{0};
};

/// Decides what happens after a worker that ran for `uptime` ended with `exit` at `now`. Restarts with
/// a delay that doubles from MIN to MAX and resets to MIN after `min_uptime`; more than `max_restarts`
/// restarts inside the sliding `window` is the threshold.
RestartDecision decide_restart(const plan::RestartSpec& spec, RestartHistory& history, const ExitInfo& exit,
                               Millis uptime, TimePoint now);

}  // namespace preforkctl::supervise
