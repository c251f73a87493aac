// A reload (SIGHUP, `ctl reload`) re-reads the config file and the env files before its rolling restart
// (SPEC §14): an invalid file changes nothing; otherwise the running plan takes over what can change live
// (plan::plan_reload), the rolling restart starts every worker with it, and a changed worker count is scaled
// to afterwards.
#include <spdlog/spdlog.h>

#include <string>

#include "plan/fd_store.hpp"
#include "plan/reload.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/notify.hpp"

namespace preforkctl::supervise {

namespace {

std::string joined(const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
    return text;
}

}  // namespace

void Supervisor::set_identity() {
    identity_.reset();
    if (plan_.user) identity_ = spawn::Identity{plan_.user->uid, plan_.user->gid, plan_.user->groups};
}

// The shared listeners a reload adds (bound already) and removes. New workers get the new set as fds 3, 4,
// ...; a removed socket stays open in preforkctl until the rolling restart is over, for the old workers.
void Supervisor::change_listeners(const plan::Plan& reread, const plan::ReloadPlan& reload, std::vector<net::Listener> added) {
    if (added.empty() && reload.listeners_removed.empty()) return;
    socket_watch_.unwatch_shared();  // the watch knows the sockets by index, which changes
    for (auto removed = reload.listeners_removed.rbegin(); removed != reload.listeners_removed.rend(); ++removed) {
        const auto index = static_cast<std::ptrdiff_t>(*removed);
        net::Listener& listener = listeners_.shared[*removed];
        spdlog::info("no longer listening on {} (name {}) for new workers; closed once the rolling restart is over",
                     listener.address(), listener.spec.name);
        if (plan_.fd_store && plan_.notify_socket) {
            sys::send_notify(*plan_.notify_socket, plan::fd_store_remove_message(listener.spec.name));
        }
        retiring_listeners_.push_back(std::move(listener));
        listeners_.shared.erase(listeners_.shared.begin() + index);
        listeners_.ports.erase(listeners_.ports.begin() + index);
        plan_.listeners.erase(plan_.listeners.begin() + index);
        plan_.listen_given.erase(plan_.listen_given.begin() + index);
    }
    for (std::size_t i = 0; i < added.size(); ++i) {
        const std::size_t index = reload.listeners_added[i];
        net::Listener& listener = added[i];
        spdlog::info("listening on {} (fd {} in workers, name {})", listener.address(), 3 + listeners_.shared.size(),
                     listener.spec.name);
        plan_.listeners.push_back(reread.listeners[index]);
        plan_.listen_given.push_back(reread.listen_given[index]);
        listeners_.ports.push_back(listener.port);
        listeners_.shared.push_back(std::move(listener));
    }
    socket_watch_.watch_shared();
    // FDSTOREREMOVE forgets every socket of a name, also a kept one that shares it: the store gets the whole
    // set again (systemd keeps one copy of a socket it holds already).
    if (plan_.fd_store && plan_.notify_socket) {
        for (const net::Listener& listener : listeners_.shared) {
            sys::send_notify_with_fds(*plan_.notify_socket, plan::fd_store_message(listener.spec), {listener.fd.get()});
        }
    }
}

std::optional<control::Reply> Supervisor::reread_configuration(const Origin& origin, std::optional<int>& new_count) {
    if (!reread_ || stopping_) return std::nullopt;
    auto reread = reread_();
    if (!reread) {
        return control::refused("the settings were not reloaded, nothing changed: " + reread.error().message);
    }
    if (!*reread) return std::nullopt;  // no config or env file: a reload is the rolling restart alone
    const plan::Plan& reread_plan = **reread;
    plan::ReloadPlan reload = plan::plan_reload(plan_, reread_plan);
    // A new address is bound first: one that cannot be bound refuses the reload, and nothing changes.
    std::vector<net::Listener> added;
    for (const std::size_t index : reload.listeners_added) {
        auto listener = net::bind_shared(reread_plan.listeners[index]);
        if (!listener) {
            return control::refused("the settings were not reloaded, nothing changed: " + listener.error().message);
        }
        added.push_back(std::move(*listener));
    }
    for (const std::string& kept : reload.kept) {
        spdlog::warn("{}: {} changed in the config file; it keeps its old value until preforkctl is restarted "
                     "or upgraded",
                     origin.text, kept);
    }
    if (reload.applied.empty()) {
        spdlog::info("{}: settings re-read; nothing in them changed that a reload applies", origin.text);
    } else {
        spdlog::info("{}: settings re-read; new {}", origin.text, joined(reload.applied));
    }
    plan_ = std::move(reload.next);
    change_listeners(reread_plan, reload, std::move(added));
    set_identity();
    for (auto& slot : slots_) {
        const plan::SlotSpec spec = plan::make_slot_spec(plan_, slot->spec.slot);
        slot->spec.cpus = spec.cpus;
        slot->spec.argv = spec.argv;
    }
    if (reload.workers_changed) new_count = plan_.workers;
    return std::nullopt;
}

}  // namespace preforkctl::supervise
