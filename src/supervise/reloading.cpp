// A reload (SIGHUP, `ctl reload`) re-reads the config file before its rolling restart (SPEC §14): an invalid
// file changes nothing; otherwise the running plan takes over what can change live (plan::plan_reload), the
// rolling restart starts every worker with it, and a changed worker count is scaled to afterwards.
#include <spdlog/spdlog.h>

#include <string>

#include "plan/reload.hpp"
#include "supervise/supervisor_impl.hpp"

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

std::optional<control::Reply> Supervisor::reread_configuration(const Origin& origin) {
    if (!reread_ || stopping_) return std::nullopt;
    auto reread = reread_();
    if (!reread) {
        return control::refused("the config file was not reloaded, nothing changed: " + reread.error().message);
    }
    if (!*reread) return std::nullopt;  // no config file: a reload is the rolling restart alone
    plan::ReloadPlan reload = plan::plan_reload(plan_, **reread);
    for (const std::string& kept : reload.kept) {
        spdlog::warn("{}: {} changed in the config file; it keeps its old value until preforkctl is restarted "
                     "or upgraded",
                     origin.text, kept);
    }
    if (reload.applied.empty()) {
        spdlog::info("{}: config file re-read; nothing in it changed that a reload applies", origin.text);
    } else {
        spdlog::info("{}: config file re-read; new {}", origin.text, joined(reload.applied));
    }
    plan_ = std::move(reload.next);
    set_identity();
    for (auto& slot : slots_) {
        const plan::SlotSpec spec = plan::make_slot_spec(plan_, slot->spec.slot);
        slot->spec.cpus = spec.cpus;
        slot->spec.argv = spec.argv;
    }
    if (reload.workers_changed) reload_count_ = plan_.workers;
    return std::nullopt;
}

}  // namespace preforkctl::supervise
