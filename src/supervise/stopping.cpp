#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include "plan/durations.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/children.hpp"

namespace preforkctl::supervise {

void Supervisor::begin_stop(const std::string& why, std::optional<plan::Millis> timeout) {
    if (stopping_) return;
    stopping_ = true;
    rolling_queue_.clear();
    rolling_ = false;
    finish_rolling_restart(false);
    const plan::Millis stop_timeout = timeout.value_or(plan_.stop.timeout);
    elastic_timer_.cancel();
    if (elastic_watch_.is_open()) elastic_watch_.close();
    rss_timer_.cancel();
    notify_systemd("STOPPING=1\nSTATUS=stopping");
    spdlog::info("stopping every worker ({}): {} then SIGKILL after {}", why, plan::signal_name(plan_.stop.signal),
                 plan::format_duration(stop_timeout));
    for (auto& slot : slots_) {
        slot->ready_timer.cancel();
        slot->lifetime_timer.cancel();
        slot->watchdog_timer.cancel();
        apply(*slot, event::Stop{});
    }
    signal_strays(plan_.stop.signal);
    stop_timer_.expires_after(stop_timeout);
    stop_timer_.async_wait([this, stop_timeout](const boost::system::error_code& error) {
        if (error) return;
        spdlog::warn("stop timeout of {} passed: killing the remaining workers", plan::format_duration(stop_timeout));
        kill_all();
    });
    finish_if_settled();
}

void Supervisor::kill_all() {
    killing_ = true;
    for (auto& slot : slots_) {
        apply(*slot, event::Kill{});
    }
    signal_strays(SIGKILL);
    finish_if_settled();  // without /proc, strays cannot be killed: see there
}

void Supervisor::finish_if_settled() {
    remove_finished_slots();
    // On demand (-n 0..MAX), no slot at all is a state to wait in, not the end.
    if (!stopping_ && plan_.elastic && slots_.empty()) return;
    for (auto& slot : slots_) {
        if (!is_settled(slot->state)) return;
    }
    // Strays must not outlive preforkctl: as PID 1 the kernel would SIGKILL them without warning, as a
    // subreaper it would hand them to the host's init. They get the stop signal, SIGKILL after the timeout,
    // and preforkctl leaves once the last one is reaped (reap() calls back here).
    // Without /proc any child counts as a stray: there is no telling them apart.
    const auto children = sys::child_pids();
    if (children) find_output_readers(*children);
    const bool strays = children ? std::any_of(children->begin(), children->end(),
                                               [this](pid_t pid) { return is_stray(pid); })
                                 : sys::has_children();
    if (strays) {
        if (!stopping_) {
            begin_stop("every worker has ended; stopping the processes they left behind");
            return;
        }
        if (!killing_ || children || ::getpid() == 1) {
            signal_strays(killing_ ? SIGKILL : plan_.stop.signal);
            return;
        }
        // No /proc and not PID 1: the remaining children cannot be found, so they cannot be stopped either;
        // waiting for them could take forever. They were given the stop timeout to end by themselves.
        spdlog::warn("without /proc, preforkctl cannot find its remaining child processes (left behind by "
                     "workers, or inherited) to stop them: they keep running");
    }
    // Every slot is over: leave the loop (relay_.finish() then writes what is left).
    stop_timer_.cancel();
    io_.stop();
}

}  // namespace preforkctl::supervise
