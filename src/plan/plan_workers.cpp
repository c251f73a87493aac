#include <algorithm>
#include <charconv>
#include <cstdint>

#include "plan/planners.hpp"
#include "plan/setting_values.hpp"
#include "plan/user.hpp"

namespace preforkctl::plan {

namespace {

Result<int> parse_workers(const std::string& value, int auto_workers) {
    if (value == "auto") {
        return auto_workers;
    }
    int workers = 0;
    auto [rest, ec] = std::from_chars(value.data(), value.data() + value.size(), workers);
    if (ec != std::errc{} || rest != value.data() + value.size() || workers < 1 || workers > kMaxWorkers) {
        return Error{"must be 'auto' or a number from 1 to " + std::to_string(kMaxWorkers) + ", got '" + value + "'"};
    }
    return workers;
}

}  // namespace

std::uint64_t estimate_descriptors(const Plan& plan, int workers) {
    // preforkctl's own: stdio, epoll, signalfd, the event loop's timer and wake-up fds, its stdout/stderr
    // reopened for the relay, /dev/null and the report pipe of a launch, a /proc scan, systemd's socket.
    constexpr std::uint64_t kOwn = 32;
    const auto listeners = static_cast<std::uint64_t>(plan.listeners.size());
    std::uint64_t per_slot = 0;
    // A stdout and a stderr pipe, both ends kept; twice, for a rolling restart's new worker while the old
    // one drains (every slot's old worker may still be draining when the last slot is replaced).
    if (plan.log.format != LogFormat::inherit) per_slot += 2 * 4;
    if (plan.ready.mode == ReadyMode::notify) per_slot += 2;  // the worker's own NOTIFY_SOCKET, old and new
    if (plan.socket_mode == SocketMode::reuseport) per_slot += listeners;
    const std::uint64_t shared = plan.socket_mode == SocketMode::shared ? listeners : 0;
    return kOwn + shared + per_slot * static_cast<std::uint64_t>(workers);
}

Status plan_cpus_and_workers(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    std::optional<CpuList> restrict_to;
    if (settings.cpus) {
        auto cpus = parse_cpu_list(settings.cpus->value);
        if (!cpus) return setting_error(*settings.cpus, "cpus", cpus.error().message);
        if (cpus->empty()) return setting_error(*settings.cpus, "cpus", "the list is empty");
        restrict_to = *cpus;
    }
    auto budget = decide_cpu_budget(facts.cpus, restrict_to);
    if (!budget) {
        if (settings.cpus) return setting_error(*settings.cpus, "cpus", budget.error().message);
        return Error{budget.error().message, 0, ExitCode::config};
    }
    plan.budget = *budget;
    auto workers = parse_setting<int>(settings.workers, "workers", plan.budget.auto_workers,
                                      [&](const std::string& v) { return parse_workers(v, plan.budget.auto_workers); });
    if (!workers) return workers.error();
    plan.workers = *workers;
    const bool explicit_count = settings.workers && settings.workers->value != "auto";
    plan.workers_source = explicit_count ? "set by " + settings.workers->origin : "auto: " + plan.budget.source;
    plan.affinity = settings.affinity && settings.affinity->value;
    plan.cpus_restricted = restrict_to.has_value();
    return Ok{};
}

Status plan_user(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    if (!settings.user) return Ok{};
    auto credentials =
        decide_credentials(settings.user->value, facts.user.value_or(UserLookup{}), facts.euid,
                                          facts.egid, facts.can_switch_user);
    if (!credentials) return setting_error(*settings.user, "user", credentials.error().message);
    plan.user = *credentials;
    return Ok{};
}

Status plan_descriptors(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    const FdLimits& limits = facts.fd_limits;
    plan.fds_needed = estimate_descriptors(plan, plan.workers);
    plan.fd_limit = limits.raised;
    if (limits.soft < limits.raised) plan.worker_fd_limit = limits.soft;
    if (limits.raised == 0 || plan.fds_needed <= limits.raised) return Ok{};  // 0: not known (no getrlimit)
    const std::string why = std::to_string(plan.workers) + " workers need about " + std::to_string(plan.fds_needed) +
                            " file descriptors, but preforkctl may open only " + std::to_string(limits.raised) +
                            " (RLIMIT_NOFILE hard limit " + std::to_string(limits.hard) +
                            "); raise it (ulimit -Hn, systemd LimitNOFILE=, docker --ulimit nofile=) or run fewer "
                            "workers";
    if (settings.workers) return setting_error(*settings.workers, "workers", why);
    return Error{"--workers: " + why, 0, ExitCode::usage};
}

SlotSpec make_slot_spec(const Plan& plan, int slot) {
    SlotSpec spec;
    spec.slot = slot;
    if (plan.affinity) {
        const std::vector<int> cpu_of_slot = map_slots_to_cpus(plan.budget, slot + 1);
        if (!cpu_of_slot.empty()) spec.cpus = {cpu_of_slot.back()};
    } else if (plan.cpus_restricted) {
        spec.cpus = plan.budget.cpus;
        std::sort(spec.cpus.begin(), spec.cpus.end());
    }
    spec.argv = plan.command;
    return spec;
}

}  // namespace preforkctl::plan
