// ctl upgrade (SPEC §14): the running image hands everything it knows and holds to a new image of
// preforkctl and execve()s it, so the pid stays (systemd, docker and the workers' parent link see nothing)
// and no worker is signalled. The new binary is tried first on a copy of the state (check-only); until the
// execve succeeds, any failure leaves this image running as it was and the client gets the reason.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "supervise/scaling_policy.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/reexec.hpp"

namespace preforkctl::supervise {

namespace {

constexpr std::chrono::milliseconds kCheckTimeout{10'000};   // the new image's check-only run
constexpr std::chrono::milliseconds kOutputFlushLimit{200};  // waiting for a slow reader of our output

std::int64_t ms_between(TimePoint earlier, TimePoint later) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(later - earlier).count();
}

upgrade::PipeState pipe_state(const logrelay::PipeHandover& pipe) {
    return {pipe.read_fd, pipe.write_fd, pipe.partial, pipe.continuing};
}

// The last non-empty line of what the check-only run printed: its reason.
std::string last_line(const std::string& text) {
    std::size_t end = text.find_last_not_of("\r\n ");
    if (end == std::string::npos) return "";
    const std::size_t start = text.rfind('\n', end);
    return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

}  // namespace

std::string Supervisor::upgrade_blocker() const {
    if (stopping_) return "preforkctl is stopping";
    if (rolling_) return "a rolling restart is under way; upgrade once it has ended";
    for (const auto& slot : slots_) {
        const std::string which = "slot " + std::to_string(slot->spec.slot);
        if (slot->removing) return which + " is being removed; upgrade once it is gone";
        if (slot->state.phase == Phase::starting || slot->state.phase == Phase::stopping) {
            return which + " is " + to_text(slot->state.phase) + "; try again in a moment";
        }
        if (slot->state.phase == Phase::running && !slot->state.ready) {
            return which + "'s worker is not ready yet; try again once it is";
        }
        if (slot->state.previous_pid != 0 || !slot->state.draining.empty()) {
            return which + " has replaced workers still finishing; upgrade once they have exited";
        }
    }
    return relay_.handover_blocker();
}

upgrade::State Supervisor::capture_state(const logrelay::RelayHandover& relay) const {
    const TimePoint now = Clock::now();
    upgrade::State state;
    state.from_version = PREFORKCTL_VERSION;
    state.binary = invocation_.executable;
    state.fd_soft_limit = invocation_.fd_soft_limit;
    state.workdir_fd = workdir_fd_;
    state.uptime_ms = ms_between(started_at_, now);
    for (std::size_t i = 0; i < listeners_.shared.size(); ++i) {
        const net::Listener& listener = listeners_.shared[i];
        state.listeners.push_back({listener.fd.get(), -1, listener.spec.name, listener.address(), listener.port});
    }
    for (std::size_t slot = 0; slot < listeners_.per_slot.size(); ++slot) {
        for (const net::Listener& listener : listeners_.per_slot[slot]) {
            state.listeners.push_back(
                {listener.fd.get(), static_cast<int>(slot), listener.spec.name, listener.address(), listener.port});
        }
    }
    for (const auto& runtime : slots_) {
        const SlotState& machine = runtime->state;
        upgrade::SlotState slot;
        slot.slot = runtime->spec.slot;
        slot.phase = to_text(machine.phase);
        slot.pid = machine.pid;
        slot.ready = machine.ready;
        slot.started_ms_ago = machine.pid != 0 ? ms_between(machine.started_at, now) : 0;
        slot.cpus = runtime->spec.cpus;
        slot.generation = runtime->generation;
        slot.restarts_total = runtime->restarts_total;
        slot.restarts_by_reason = runtime->restarts_by_reason;
        for (const TimePoint at : machine.history.recent) slot.restarts_ms_ago.push_back(ms_between(at, now));
        slot.next_delay_ms = machine.history.next_delay.count();
        if (machine.phase == Phase::waiting_restart) {
            slot.restart_in_ms = std::max<std::int64_t>(0, ms_between(now, runtime->restart_timer.expiry()));
        }
        slot.failure_reason = runtime->failure_reason;
        slot.watchdog_interval_ms = runtime->watchdog_interval.count();
        if (runtime->last_exit_at) {
            slot.last_exit = upgrade::ExitState{machine.last_exit.signaled, machine.last_exit.value,
                                                ms_between(*runtime->last_exit_at, now)};
        }
        if (const auto found = relay.slots.find(slot.slot); found != relay.slots.end()) {
            slot.out = pipe_state(found->second.first);
            slot.err = pipe_state(found->second.second);
        }
        slot.notify_fd = runtime->notify ? runtime->notify->native_handle() : -1;
        state.slots.push_back(std::move(slot));
    }
    state.control_fd = control_ ? control_->descriptor() : -1;
    state.control_path = control_ ? control_->path() : "";
    state.metrics_fd = metrics_ ? metrics_->descriptor() : -1;
    state.queued_stdout = relay.queued_stdout;
    state.queued_stderr = relay.queued_stderr;
    state.generation = generation_;
    state.counters = {{"rolling_replaced", rolling_replaced_},
                      {"scale_ups", scale_ups_},
                      {"scale_downs", scale_downs_},
                      {"watchdog_timeouts", watchdog_timeouts_},
                      {"upgrades", upgrades_}};
    for (const auto& [reason, count] : scaled_up_by_) state.counters["scale_up:" + reason] = count;
    for (const auto& [reason, count] : scaled_down_by_) state.counters["scale_down:" + reason] = count;
    for (const auto& [reason, count] : recycles_) state.counters["recycle:" + reason] = count;
    const logrelay::RelayCounters relayed = relay_.counters();
    state.counters["out_lines"] = relayed.out.lines;
    state.counters["out_bytes"] = relayed.out.bytes;
    state.counters["out_dropped"] = relayed.out.dropped_lines;
    state.counters["err_lines"] = relayed.err.lines;
    state.counters["err_bytes"] = relayed.err.bytes;
    state.counters["err_dropped"] = relayed.err.dropped_lines;
    state.inherited.assign(inherited_.begin(), inherited_.end());
    state.output_readers.assign(output_readers_.begin(), output_readers_.end());
    state.announced_ready = announced_ready_;
    state.first_worker_failure = first_worker_failure_.value_or(-1);
    return state;
}

// The check-only run: `binary --upgrade-check=FD ARGS...` on a copy of the state as it would be handed over
// now. It reads the state, makes the plan from the command line and config file, and must print
// upgrade::kCheckAccepted and exit 0. The loop goes on meanwhile.
std::optional<control::Reply> Supervisor::upgrade(const control::request::Upgrade& request, const Origin& origin,
                                                  const control::Respond& respond) {
    if (upgrading_) return control::refused("an upgrade to " + upgrading_->binary + " is under way");
    if (const std::string blocker = upgrade_blocker(); !blocker.empty()) return control::refused(blocker);
    const std::string binary = request.binary.value_or(invocation_.executable);
    if (binary.empty()) return control::refused("the executable of this preforkctl is unknown: give --binary PATH");
    if (binary.front() != '/') return control::refused("--binary needs an absolute path: " + binary);
    if (::access(binary.c_str(), X_OK) != 0) {
        return control::refused("cannot execute " + binary + ": " + std::strerror(errno));
    }
    const upgrade::State state = capture_state(relay_.hand_over(Millis{0}));
    auto copy = sys::write_memfd(upgrade::encode(state));
    if (!copy) return control::refused(copy.error().message);
    std::vector<std::string> argv{binary, "--upgrade-check=" + std::to_string(copy->get())};
    argv.insert(argv.end(), invocation_.args.begin(), invocation_.args.end());
    // The check reads the config file from the directory preforkctl started in, as the new image will.
    std::vector<int> keep{copy->get()};
    if (state.workdir_fd >= 0) keep.push_back(state.workdir_fd);
    auto child = sys::start_check(argv, keep);
    if (!child) return control::refused(child.error().message);
    upgrading_ = std::make_unique<PendingUpgrade>(io_, child->pid,
                                                  asio::posix::stream_descriptor(io_, child->output.release()));
    upgrading_->binary = binary;
    upgrading_->origin_text = origin.text;
    upgrading_->client_fd = origin.client_fd;
    upgrading_->respond = respond;
    upgrading_->began_ns = sys::monotonic_ns();
    upgrading_->timer.expires_after(kCheckTimeout);
    upgrading_->timer.async_wait([this, pending = upgrading_.get()](const boost::system::error_code& error) {
        if (error || upgrading_.get() != pending) return;
        pending->timed_out = true;
        ::kill(pending->pid, SIGKILL);  // reaped as usual; its output then ends
    });
    read_check_output();
    return std::nullopt;
}

void Supervisor::read_check_output() {
    PendingUpgrade* pending = upgrading_.get();
    pending->output.async_read_some(
        asio::buffer(pending->buffer), [this, pending](const boost::system::error_code& error, std::size_t n) {
            if (upgrading_.get() != pending) return;
            if (n > 0 && pending->said.size() < 64 * 1024) pending->said.append(pending->buffer.data(), n);
            if (!error) {
                read_check_output();
                return;
            }
            pending->output_done = true;
            check_finished();
        });
}

void Supervisor::check_finished() {
    PendingUpgrade& pending = *upgrading_;
    if (!pending.output_done || !pending.status) return;
    const std::unique_ptr<PendingUpgrade> done = std::move(upgrading_);
    const std::string& binary = pending.binary;
    std::string refused;
    const std::string said = last_line(pending.said);
    if (pending.timed_out) {
        refused = binary + " did not finish its check within " + std::to_string(kCheckTimeout.count() / 1000) + " s";
    } else if (*pending.status != 0) {
        refused = binary + " refused the state (exit " + (*pending.status < 0 ? std::string("by a signal")
                                                                            : std::to_string(*pending.status)) +
                  (said.empty() ? "" : ": " + said) + ")";
    } else if (pending.said.find(std::string(upgrade::kCheckAccepted)) == std::string::npos) {
        refused = binary + " does not take over a preforkctl (its check said nothing)";
    } else if (const std::string blocker = upgrade_blocker(); !blocker.empty()) {
        refused = blocker;  // something began while the check ran
    } else {
        refused = execute_upgrade(pending);  // returns only when the execve failed
    }
    spdlog::info("{}: refused: {}", pending.origin_text, refused);
    if (pending.respond) pending.respond(control::refused(refused));
}

// The point of no return: from here the state must not change before execve. The loop does not run, so a
// worker that dies now stays a zombie with its SIGCHLD pending, for the new image to reap.
std::string Supervisor::execute_upgrade(PendingUpgrade& pending) {
    const std::int64_t away_from = sys::monotonic_ns();
    spdlog::info("{}: upgrading in place to {} (pid {} stays, {} untouched; its check took {} ms)",
                 pending.origin_text, pending.binary, ::getpid(), workers_text(live_slots()),
                 (away_from - pending.began_ns) / 1'000'000);
    upgrade::State state = capture_state(relay_.hand_over(kOutputFlushLimit));
    state.client_fd = pending.client_fd;
    state.taken_at_ns = away_from;
    auto memfd = sys::write_memfd(upgrade::encode(state));
    if (!memfd) return memfd.error().message;
    std::vector<std::string> argv{pending.binary, "--upgrade-state=" + std::to_string(memfd->get())};
    argv.insert(argv.end(), invocation_.args.begin(), invocation_.args.end());
    std::vector<int> keep = upgrade::descriptors(state);
    keep.push_back(memfd->get());
    const Error failed = sys::exec_keeping(argv, keep);
    // Still here: execve failed, and this image goes on as it was (what was queued is still queued).
    spdlog::error("{}: upgrade failed: {}", pending.origin_text, failed.message);
    return "upgrade failed, still running " PREFORKCTL_VERSION ": " + failed.message;
}

}  // namespace preforkctl::supervise
