#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include "plan/durations.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/children.hpp"

namespace preforkctl::supervise {

void Supervisor::reap() {
    for (;;) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        const ExitInfo exit = WIFSIGNALED(status) ? ExitInfo{true, WTERMSIG(status)}
                                                  : ExitInfo{false, WEXITSTATUS(status)};
        if (upgrading_ && pid == upgrading_->pid) {
            upgrading_->status = exit.signaled ? -1 : exit.value;
            check_finished();
            continue;
        }
        SlotRuntime* owner = nullptr;
        for (auto& slot : slots_) {
            if (has_worker(slot->state, pid)) {
                owner = slot.get();
                break;
            }
        }
        if (owner == nullptr) {
            inherited_.erase(pid);  // its pid may be reused by a process that is a stray
            output_readers_.erase(pid);
            spdlog::debug("reaped orphan {} ({})", pid, exit.describe());
            continue;
        }
        // Whatever the worker wrote before dying is relayed before anything else is said about it.
        relay_.worker_exited(owner->spec.slot, pid);
        // What is left of the dead worker's process group (e.g. an nginx worker whose master died) would
        // run on beside the replacement: ask it to go, gracefully (--stop-signal), so it finishes what it serves.
        if (::kill(-pid, plan_.stop.signal) == 0) {
            ::kill(-pid, SIGCONT);
            spdlog::debug("slot {}: sent {} to what is left of worker {}'s process group", owner->spec.slot,
                          plan::signal_name(plan_.stop.signal), pid);
        }
        const bool current = owner->state.pid == pid;
        if (current) {
            owner->last_exit_at = Clock::now();
            // A reason the supervisor gave already (a --ready-timeout kill) says more than the SIGKILL it led to.
            if (owner->failure_reason.empty()) {
                owner->failure_reason = exit.signaled ? "crash" : exit.value != 0 ? "failure" : "exit";
            }
        }
        if (current && !is_success(plan_.restart, exit) && !stopping_ && !first_worker_failure_) {
            first_worker_failure_ = exit.as_status();
        }
        apply(*owner, event::Exited{pid, exit});
        socket_watch_.rearm_hung_up();
    }
    finish_if_settled();
}

// Children that are not workers: orphans re-parented to preforkctl (PID 1 or subreaper), among them
// helpers that left their worker's session with setsid and so escaped its process group.
void Supervisor::signal_strays(int signal) {
    const auto children = sys::child_pids();
    if (!children) {
        // No /proc of our own: as PID 1, kill(-1) reaches every other process of the namespace.
        if (::getpid() == 1 && ::kill(-1, signal) == 0 && signal != SIGKILL) ::kill(-1, SIGCONT);
        return;
    }
    find_output_readers(*children);
    for (const pid_t pid : *children) {
        if (!is_stray(pid)) continue;
        if (signal != SIGKILL && !strays_signalled_.insert(pid).second) continue;
        if (::kill(pid, signal) == 0) {
            if (signal != SIGKILL) ::kill(pid, SIGCONT);
            spdlog::debug("sent {} to stray process {}", plan::signal_name(signal), pid);
        }
    }
}

void Supervisor::find_output_readers(const std::vector<pid_t>& children) {
    std::vector<pid_t> candidates;
    for (const pid_t pid : children) {
        if (inherited_.contains(pid) && !strays_signalled_.contains(pid)) candidates.push_back(pid);
    }
    output_readers_.clear();
    for (const pid_t pid : sys::sharing_output_pipe(candidates)) output_readers_.insert(pid);
}

bool Supervisor::is_stray(pid_t pid) const {
    const bool worker =
        std::any_of(slots_.begin(), slots_.end(), [pid](const auto& slot) { return has_worker(slot->state, pid); });
    return !worker && !output_readers_.contains(pid);
}

}  // namespace preforkctl::supervise
