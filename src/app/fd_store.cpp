#include "app/fd_store.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "plan/fd_store.hpp"
#include "sys/notify.hpp"

namespace preforkctl::app {

void keep_listeners_in_fd_store(const plan::Plan& plan, const net::ListenerSet& listeners) {
    for (const plan::InheritedSocket& stale : plan.stale_stored) {
        ::close(stale.fd);
        spdlog::info("closed {} (name {}) that systemd kept for an earlier configuration", stale.address, stale.name);
        if (plan.notify_socket) sys::send_notify(*plan.notify_socket, plan::fd_store_remove_message(stale.name));
    }
    if (!plan.fd_store || !plan.notify_socket) return;
    std::string names;
    for (std::size_t i = 0; i < listeners.shared.size() && i < plan.listeners.size(); ++i) {
        const plan::ListenSpec& spec = plan.listeners[i];
        if (!sys::send_notify_with_fds(*plan.notify_socket, plan::fd_store_message(spec),
                                       {listeners.shared[i].fd.get()})) {
            spdlog::warn("cannot hand {} to systemd's fd store at {}: {}", listeners.shared[i].address(),
                         *plan.notify_socket, std::strerror(errno));
            continue;
        }
        names += (names.empty() ? "" : ", ") + spec.name;
    }
    if (!names.empty()) {
        spdlog::info("systemd keeps the listening socket{} across restarts (fd store: {})",
                     listeners.shared.size() == 1 ? "" : "s", names);
    }
}

}  // namespace preforkctl::app
