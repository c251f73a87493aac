#include <algorithm>
#include <charconv>
#include <cstdint>

#include "plan/planners.hpp"
#include "plan/setting_values.hpp"
#include "plan/user.hpp"

namespace preforkctl::plan {

namespace {

// kMaxWorkers as text, for messages (kept in a named string: "literal" + std::to_string(...) is a false
// -Wrestrict with GCC 12 at -O3).
const std::string kMaxWorkersText = std::to_string(kMaxWorkers);

// A number from `lowest` to kMaxWorkers, or nothing.
std::optional<int> parse_count(const std::string& text, int lowest) {
    int count = 0;
    auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
    if (ec != std::errc{} || rest != text.data() + text.size() || count < lowest || count > kMaxWorkers) {
        return std::nullopt;
    }
    return count;
}

// A worker count as written: fixed (no elastic) or MIN..MAX.
struct WorkerCount {
    int workers = 1;
    std::optional<ElasticSpec> elastic;
};

Result<WorkerCount> parse_worker_range(const std::string& value, std::size_t dots, int auto_workers) {
    const std::string max_text = value.substr(dots + 2);
    const std::optional<int> min = parse_count(value.substr(0, dots), 0);
    if (!min) {
        return Error{"MIN of MIN..MAX must be a number from 0 to " + kMaxWorkersText + ", got '" + value + "'"};
    }
    // MAX 0 is read as a number, so that 0..0 is refused for its order, like 3..1.
    const std::optional<int> max = max_text == "auto" ? auto_workers : parse_count(max_text, 0);
    if (!max) {
        return Error{"MAX of MIN..MAX must be 'auto' or a number from 1 to " + kMaxWorkersText + ", got '" +
                     value + "'"};
    }
    if (*min >= *max) {
        std::string why = "MIN must be below MAX (a fixed count is written -n N), got '" + value + "'";
        if (max_text == "auto") {
            why += " (auto is ";
            why += std::to_string(auto_workers) + " here)";
        }
        return Error{why};
    }
    ElasticSpec elastic;
    elastic.min = *min;
    elastic.max = *max;
    return WorkerCount{*min, elastic};
}

Result<WorkerCount> parse_workers(const std::string& value, int auto_workers) {
    if (value == "auto") {
        return WorkerCount{auto_workers, std::nullopt};
    }
    if (const std::size_t dots = value.find(".."); dots != std::string::npos) {
        return parse_worker_range(value, dots, auto_workers);
    }
    const std::optional<int> workers = parse_count(value, 1);
    if (!workers) {
        return Error{"must be 'auto' or a number from 1 to " + kMaxWorkersText + ", got '" + value + "'"};
    }
    return WorkerCount{*workers, std::nullopt};
}

// "set by --workers", "elastic 1..8, set by --workers" or "auto: <budget source>".
std::string describe_workers_source(const config::Settings& settings, const Plan& plan) {
    if (!settings.workers || settings.workers->value == "auto") return "auto: " + plan.budget.source;
    const std::string set_by = "set by " + settings.workers->origin;
    if (!plan.elastic) return set_by;
    std::string text = "elastic ";
    text += std::to_string(plan.elastic->min) + ".." + std::to_string(plan.elastic->max);
    if (settings.workers->value.ends_with("..auto")) text += " (MAX auto: " + plan.budget.source + ")";
    return text + ", " + set_by;
}

// Elastic workers follow the accept queues of the sockets preforkctl holds.
Status check_elastic_listeners(const config::Setting<std::string>& workers, const Plan& plan) {
    if (plan.socket_mode == SocketMode::child) {
        return setting_error(workers, "workers",
                             "MIN..MAX follows the accept queues of the sockets preforkctl holds, and with "
                             "--socket-mode child it holds none; use shared or reuseport");
    }
    if (plan.listeners.empty()) {
        return setting_error(workers, "workers",
                             "MIN..MAX follows the accept queues of the listeners, and there is none; give "
                             "--listen (or let systemd pass the sockets)");
    }
    if (plan.elastic->min == 0 && plan.socket_mode != SocketMode::shared) {
        return setting_error(workers, "workers",
                             "0..MAX needs --socket-mode shared: reuseport sockets belong to the slots, so with no "
                             "worker running nothing would listen");
    }
    return Ok{};
}

}  // namespace

std::uint64_t estimate_descriptors(const Plan& plan, int workers) {
    // preforkctl's own: stdio, epoll, signalfd, the event loop's timer and wake-up fds, its stdout/stderr
    // reopened for the relay, /dev/null (and under ASan the report pipe of a launch), a /proc scan, systemd's
    // socket.
    constexpr std::uint64_t kOwn = 32;
    const auto listeners = static_cast<std::uint64_t>(plan.listeners.size());
    std::uint64_t per_slot = 0;
    // A stdout and a stderr pipe, both ends kept; twice, for a rolling restart's new worker while the old
    // one drains (every slot's old worker may still be draining when the last slot is replaced).
    if (plan.log.format != LogFormat::inherit) per_slot += 2 * 4;
    // The worker's own NOTIFY_SOCKET, old and new.
    if (plan.ready.mode == ReadyMode::notify || plan.watchdog) per_slot += 2;
    if (plan.socket_mode == SocketMode::reuseport) per_slot += listeners;
    const std::uint64_t shared = plan.socket_mode == SocketMode::shared ? listeners : 0;
    // The launcher's staged descriptors (a worker's stdout, stderr and listeners are set there before a start).
    const std::uint64_t staged = 2 + listeners;
    return kOwn + shared + staged + per_slot * static_cast<std::uint64_t>(workers);
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
    const int auto_workers = plan.budget.auto_workers;
    auto workers = parse_setting<WorkerCount>(settings.workers, "workers", WorkerCount{auto_workers, {}},
                                              [&](const std::string& v) { return parse_workers(v, auto_workers); });
    if (!workers) return workers.error();
    plan.workers = workers->workers;
    plan.elastic = workers->elastic;
    plan.workers_source = describe_workers_source(settings, plan);
    plan.affinity = settings.affinity && settings.affinity->value;
    plan.cpus_restricted = restrict_to.has_value();
    return Ok{};
}

Status plan_elastic(const config::Settings& settings, const HostFacts& /*facts*/, Plan& plan) {
    const ElasticSpec defaults;
    auto up = parse_positive_duration(settings.scale_up_after, "scale-up-after", defaults.scale_up_after);
    if (!up) return up.error();
    auto down = parse_positive_duration(settings.scale_down_after, "scale-down-after", defaults.scale_down_after);
    if (!down) return down.error();
    if (!plan.elastic) {
        const std::string why = "has no effect without -n MIN..MAX (a fixed worker count does not scale by itself)";
        if (settings.scale_up_after) {
            plan.warnings.push_back(setting_warning(*settings.scale_up_after, "scale-up-after", why));
        }
        if (settings.scale_down_after) {
            plan.warnings.push_back(setting_warning(*settings.scale_down_after, "scale-down-after", why));
        }
        return Ok{};
    }
    plan.elastic->scale_up_after = *up;
    plan.elastic->scale_down_after = *down;
    return check_elastic_listeners(*settings.workers, plan);
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
    // An elastic plan may grow to MAX workers while it runs, so MAX is what must fit.
    const int most = plan.elastic ? plan.elastic->max : plan.workers;
    plan.fds_needed = estimate_descriptors(plan, most);
    plan.fd_limit = limits.raised;
    if (limits.soft < limits.raised) plan.worker_fd_limit = limits.soft;
    if (limits.raised == 0 || plan.fds_needed <= limits.raised) return Ok{};  // 0: not known (no getrlimit)
    std::string count = plan.elastic ? std::string("up to ") : std::string();
    count += std::to_string(most);
    const std::string why = count + " workers need about " + std::to_string(plan.fds_needed) +
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
