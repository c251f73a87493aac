#include <spdlog/spdlog.h>

#include <cstring>

#include "supervise/notify_senders.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/notify.hpp"

namespace preforkctl::supervise {

namespace {

/// Microseconds of the notify protocol, rounded up to the timers' milliseconds.
Millis usec_to_millis(std::uint64_t usec) { return Millis{static_cast<Millis::rep>((usec + 999) / 1000)}; }

}  // namespace

void Supervisor::await_ready(SlotRuntime& slot, int pid) {
    switch (plan_.ready.mode) {
        case plan::ReadyMode::none:
            worker_ready(slot, pid);
            break;
        case plan::ReadyMode::delay:
            slot.ready_timer.expires_after(plan_.ready.delay);
            slot.ready_timer.async_wait([this, &slot, pid](const boost::system::error_code& error) {
                if (!error) worker_ready(slot, pid);
            });
            break;
        case plan::ReadyMode::notify:
            arm_ready_timeout(slot, pid, plan_.ready.timeout);
            read_notify(slot);
            break;
    }
}

void Supervisor::arm_ready_timeout(SlotRuntime& slot, int pid, Millis timeout) {
    slot.ready_timer.expires_after(timeout);
    slot.ready_timer.async_wait([this, &slot, pid](const boost::system::error_code& error) {
        if (error) return;
        if (slot.state.pid == pid) slot.failure_reason = "ready_timeout";
        apply(slot, event::ReadyTimeout{pid});
    });
}

void Supervisor::worker_ready(SlotRuntime& slot, int pid) {
    apply(slot, event::Ready{pid});
    if (slot.state.pid == pid && slot.state.ready) arm_watchdog(slot, pid);
    announce_ready_if_all_ready();
}

// The worker's own NOTIFY_SOCKET (--ready notify, --watchdog).
void Supervisor::read_notify(SlotRuntime& slot) {
    if (!slot.notify) return;
    asio::posix::stream_descriptor* socket = slot.notify.get();
    const int pid = slot.state.pid;
    socket->async_wait(asio::posix::stream_descriptor::wait_read,
                       [this, &slot, socket, pid](const boost::system::error_code& error) {
                           if (error || slot.notify.get() != socket) return;  // replaced by a newer worker's
                           const uid_t uid = identity_ ? static_cast<uid_t>(identity_->uid) : ::geteuid();
                           for (const std::string& message :
                                worker_notifications(socket->native_handle(), slot.spec.slot, pid, uid)) {
                               handle_notification(slot, pid, message);
                           }
                           if (slot.notify.get() == socket) read_notify(slot);
                       });
}

// What a worker may say, as systemd reads it: READY=1 (--ready notify), WATCHDOG=1 and WATCHDOG=trigger
// (--watchdog), WATCHDOG_USEC= (a new watchdog interval), EXTEND_TIMEOUT_USEC= (more time to get ready).
void Supervisor::handle_notification(SlotRuntime& slot, int pid, const std::string& message) {
    if (slot.state.pid != pid) return;
    if (plan_.ready.mode == plan::ReadyMode::notify && !slot.state.ready) {
        if (const auto usec = sys::notify_number(message, "EXTEND_TIMEOUT_USEC")) {
            arm_ready_timeout(slot, pid, usec_to_millis(*usec));
        }
        if (sys::notify_message_has(message, "READY=1")) {
            slot.ready_timer.cancel();
            worker_ready(slot, pid);
        }
    }
    if (!plan_.watchdog || !slot.state.ready) return;
    const auto new_interval = sys::notify_number(message, "WATCHDOG_USEC");
    if (new_interval && *new_interval > 0) slot.watchdog_interval = usec_to_millis(*new_interval);
    if (sys::notify_message_has(message, "WATCHDOG=trigger")) {
        watchdog_expired(slot, pid, true);
    } else if (sys::notify_message_has(message, "WATCHDOG=1") || (new_interval && *new_interval > 0)) {
        arm_watchdog(slot, pid);
    }
}

void Supervisor::announce_ready_if_all_ready() {
    if (announced_ready_ || stopping_ || rolling_) return;
    for (const auto& slot : slots_) {
        if (slot->state.phase == Phase::running && !slot->state.ready) return;
        if (slot->state.phase == Phase::starting || slot->state.phase == Phase::idle) return;
    }
    announced_ready_ = true;
    const int serving = live_slots();
    spdlog::debug("all {} worker{} ready", serving, serving == 1 ? "" : "s");
    notify_systemd("READY=1\nSTATUS=" + std::to_string(serving) + " worker" + (serving == 1 ? "" : "s") + " ready");
}

void Supervisor::notify_systemd(const std::string& message) {
    if (!plan_.notify_socket) return;
    if (!sys::send_notify(*plan_.notify_socket, message)) {
        spdlog::debug("cannot notify systemd at {}: {}", *plan_.notify_socket, std::strerror(errno));
    }
}

}  // namespace preforkctl::supervise
