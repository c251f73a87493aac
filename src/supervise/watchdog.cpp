// --watchdog (§12), systemd's WatchdogSec= protocol for each worker: from the moment it counts as ready, a
// worker sends WATCHDOG=1 on its NOTIFY_SOCKET at least once per interval (WATCHDOG_USEC tells it the
// interval). One that misses it, or sends WATCHDOG=trigger, is hung: SIGABRT to its process group (a core
// dump shows where it hung), SIGKILL after --stop-timeout, and a restart under the restart policy, counted
// as a failure.
#include <spdlog/spdlog.h>

#include <csignal>

#include "plan/durations.hpp"
#include "supervise/supervisor_impl.hpp"

namespace preforkctl::supervise {

void Supervisor::arm_watchdog(SlotRuntime& slot, int pid) {
    if (!plan_.watchdog || stopping_) return;
    if (slot.watchdog_interval.count() <= 0) slot.watchdog_interval = *plan_.watchdog;
    slot.watchdog_timer.expires_after(slot.watchdog_interval);
    slot.watchdog_timer.async_wait([this, &slot, pid](const boost::system::error_code& error) {
        if (!error) watchdog_expired(slot, pid);
    });
}

void Supervisor::watchdog_expired(SlotRuntime& slot, int pid, bool triggered) {
    if (stopping_ || slot.state.pid != pid || slot.failure_reason == "watchdog") return;
    ++watchdog_timeouts_;
    slot.failure_reason = "watchdog";
    const std::string what =
        triggered ? std::string("sent WATCHDOG=trigger")
                  : std::string("sent no WATCHDOG=1 within ") + plan::format_duration(slot.watchdog_interval);
    spdlog::warn("slot {}: worker {} {} (--watchdog): SIGABRT, SIGKILL after {}", slot.spec.slot, pid, what,
                 plan::format_duration(plan_.stop.timeout));
    ::kill(-pid, SIGABRT);
    slot.watchdog_timer.expires_after(plan_.stop.timeout);
    slot.watchdog_timer.async_wait([this, &slot, pid](const boost::system::error_code& error) {
        if (error || slot.state.pid != pid) return;
        spdlog::warn("slot {}: worker {} outlived SIGABRT by {}: SIGKILL", slot.spec.slot, pid,
                     plan::format_duration(plan_.stop.timeout));
        ::kill(-pid, SIGKILL);
    });
}

}  // namespace preforkctl::supervise
