#include <spdlog/spdlog.h>

#include "spawn/launch.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/notify.hpp"

namespace preforkctl::supervise {

void Supervisor::spawn(SlotRuntime& slot) {
    plan::SlotContext context = plan::make_slot_context(plan_, slot.spec, listeners_.ports);
    context.workers = live_slots();
    context.generation = generation_;
    spawn::LaunchRequest request;
    request.executable = plan_.executable;
    request.argv = plan::expand_argv(slot.spec.argv, context);
    request.env = plan::slot_environment(plan_, context);
    const bool notify_mode = plan_.ready.mode == plan::ReadyMode::notify;
    if (notify_mode || plan_.watchdog) {
        // Each worker gets a socket of its own, so a READY=1 or WATCHDOG=1 always names the worker it came from.
        auto notify = notify_directory_.bind(plan_.notify_directory);
        if (!notify) {
            slot.failure_reason = "spawn_failure";
            slot.last_exit_at = Clock::now();
            apply(slot, event::SpawnFailed{notify.error().message});
            return;
        }
        if (!notify->fallback.empty()) {
            spdlog::warn("{}; workers get abstract NOTIFY_SOCKET addresses ('@...'), which some clients cannot "
                         "reach", notify->fallback);
        }
        slot.notify = std::make_unique<asio::posix::stream_descriptor>(io_, notify->fd.release());
        slot.notify_file = std::move(notify->file);  // the previous worker's socket file goes
        request.env.push_back("NOTIFY_SOCKET=" + notify->address);  // WATCHDOG_USEC: see slot_environment
    }
    request.listen_fds = listeners_.fds_for_slot(slot.spec.slot);
    request.identity = identity_;
    if (slot.state.replacing && slot.state.previous_pid != 0) {
        // A rolling restart: the new worker writes to pipes of its own, so that every line still names the
        // worker that wrote it while the two overlap.
        if (auto separated = relay_.separate_next_worker(slot.spec.slot); !separated) {
            spdlog::warn("slot {}: the new worker shares its output pipes with the old one: {}", slot.spec.slot,
                         separated.error().message);
        }
    }
    request.stdout_fd = relay_.worker_stdout(slot.spec.slot);
    request.stderr_fd = relay_.worker_stderr(slot.spec.slot);
    request.cpus = slot.spec.cpus;
    request.fd_limit = plan_.worker_fd_limit;
    request.workdir_fd = workdir_fd_;
    request.chdir = plan_.chdir;
    const spawn::LaunchResult result = launcher_.launch(request);
    if (!result.failure) {
        relay_.worker_started(slot.spec.slot, result.pid);
        slot.generation = generation_;
        slot.failure_reason.clear();
        slot.watchdog_interval = Millis{0};
        apply(slot, event::Spawned{result.pid});
        if (slot.state.pid == result.pid) {
            arm_lifetime(slot, result.pid);
            if (!notify_mode) read_notify(slot);  // --ready notify reads it from await_ready
        }
        return;
    }
    const spawn::LaunchError failure = *result.failure;
    const std::string why = spawn::describe_failure(failure, plan_.command.front());
    const bool missing = failure.stage == spawn::LaunchStage::exec && failure.error == ENOENT;
    const int status = to_int(!spawn::is_permanent(failure) ? ExitCode::internal
                              : missing                      ? ExitCode::not_found
                                                             : ExitCode::not_executable);
    if (spawn::is_permanent(failure) && starting_up_) {
        // At start-up, a command that cannot run at all is a configuration error, reported once and never
        // retried (§6). Later (a deploy replaced the binary while a worker crashed, a rolling restart, a
        // slot added with SIGTTIN) it is a failed start under the restart policy: the healthy workers keep
        // serving, and the threshold still ends a slot that never comes back.
        spdlog::error("slot {}: {}", slot.spec.slot, why);
        if (!exit_status_) exit_status_ = status;
        slot.state.phase = Phase::done;
        begin_stop("a worker cannot be started");
        return;
    }
    // A start that failed is a failure like a crash: never exit 0 after it.
    if (!stopping_ && !first_worker_failure_) first_worker_failure_ = status;
    slot.failure_reason = "spawn_failure";
    slot.last_exit_at = Clock::now();  // the slot's last exit is now this failed start (exit 127)
    apply(slot, event::SpawnFailed{why});
}

}  // namespace preforkctl::supervise
