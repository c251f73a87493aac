#include <spdlog/spdlog.h>

#include <cstring>

#include "supervise/notify_senders.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/notify.hpp"

namespace preforkctl::supervise {

void Supervisor::await_ready(SlotRuntime& slot, int pid) {
    switch (plan_.ready.mode) {
        case plan::ReadyMode::none:
            apply(slot, event::Ready{pid});
            announce_ready_if_all_ready();
            break;
        case plan::ReadyMode::delay:
            slot.ready_timer.expires_after(plan_.ready.delay);
            slot.ready_timer.async_wait([this, &slot, pid](const boost::system::error_code& error) {
                if (error) return;
                apply(slot, event::Ready{pid});
                announce_ready_if_all_ready();
            });
            break;
        case plan::ReadyMode::notify:
            slot.ready_timer.expires_after(plan_.ready.timeout);
            slot.ready_timer.async_wait([this, &slot, pid](const boost::system::error_code& error) {
                if (error) return;
                if (slot.state.pid == pid) slot.failure_reason = "ready_timeout";
                apply(slot, event::ReadyTimeout{pid});
            });
            read_notify(slot);
            break;
    }
}

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
                               if (sys::notify_message_has(message, "READY=1")) {
                                   slot.ready_timer.cancel();
                                   apply(slot, event::Ready{pid});
                                   announce_ready_if_all_ready();
                               }
                           }
                           if (slot.notify.get() == socket) read_notify(slot);
                       });
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
