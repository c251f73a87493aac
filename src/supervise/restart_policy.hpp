#pragma once
// Restart policy (§6): whether a dead worker comes back, after how long, and when a slot gives up. Pure.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

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
    // Restart times inside the window, oldest first. A vector, not a deque: an empty one owns no memory
    // (a deque allocates 576 bytes even then, per slot and per copy of the slot's state), and it never
    // holds more than --max-restarts times.
    std::vector<TimePoint> recent;
    Millis next_delay{0};          // 0 = not started yet (MIN is used)
};

enum class Verdict { restart, stay_down, threshold };

struct RestartDecision {
    Verdict verdict = Verdict::stay_down;
    Millis delay{0};
    std::string reason;  // the option that decided, when it was not just --restart always: "--restart-prevent"
};

/// True when `exit` counts as a success: exit code 0, or listed in --success-exit. A failure makes
/// --restart on-failure restart and is never followed by exit status 0.
bool is_success(const plan::RestartSpec& spec, const ExitInfo& exit);

/// Decides what happens after a worker that ran for `uptime` ended with `exit` at `now` (no `exit`: it
/// could not be started, a failure that the exit-status lists do not name). --restart-prevent keeps the
/// slot down and --restart-force restarts, whatever --restart says; otherwise `always`, `on-failure` (not
/// after a success) or `never`. Restarts with a delay that doubles from MIN to MAX and resets to MIN after
/// `min_uptime`; more than `max_restarts` restarts inside the sliding `window` is the threshold, whatever
/// the exit status (a worker that exits 0 at once, again and again, reaches it too).
RestartDecision decide_restart(const plan::RestartSpec& spec, RestartHistory& history,
                               const std::optional<ExitInfo>& exit, Millis uptime, TimePoint now);

}  // namespace preforkctl::supervise
