#include <sstream>

#include "plan/make_plan.hpp"

namespace preforkctl::plan {

namespace {

const char* to_text(RestartWhen when) {
    switch (when) {
        case RestartWhen::always: return "always";
        case RestartWhen::on_failure: return "on-failure";
        case RestartWhen::never: return "never";
    }
    return "?";
}

const char* to_text(LogFormat format) {
    switch (format) {
        case LogFormat::prefix: return "prefix";
        case LogFormat::json: return "json";
        case LogFormat::raw: return "raw";
        case LogFormat::inherit: return "inherit";
    }
    return "?";
}

std::string quoted_join(const std::vector<std::string>& words) {
    std::string out;
    for (const std::string& word : words) {
        const bool plain = !word.empty() && word.find_first_of(" \t\"'\\$") == std::string::npos;
        out += out.empty() ? "" : " ";
        out += plain ? word : "'" + word + "'";
    }
    return out;
}

}  // namespace

std::string describe_plan(const Plan& plan) {
    std::ostringstream out;
    out << "command:      " << quoted_join(plan.command) << "\n";
    out << "executable:   " << plan.executable << "\n";
    out << "cpu budget:   " << format_cpu_list(CpuList(plan.budget.cpus)) << " (" << plan.budget.cpus.size()
        << " usable, auto = " << plan.budget.auto_workers << ", decided by " << plan.budget.source << ")\n";
    out << "workers:      " << plan.workers << " (" << plan.workers_source << ")\n";
    out << "affinity:     " << (plan.affinity ? "one CPU per slot, physical cores first" : "off") << "\n";
    out << "socket mode:  shared\n";
    if (plan.listeners.empty()) {
        out << "listeners:    none (LISTEN_FDS is not set)\n";
    }
    for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
        const ListenSpec& listener = plan.listeners[i];
        out << "listener:     fd " << 3 + i << "  " << format_address(listener, listener.port);
        if (listener.kind == ListenSpec::Kind::tcp && listener.port == 0) {
            out << " (port chosen by the kernel at bind)";
        }
        out << "  name=" << listener.name << " backlog=" << listener.backlog << "\n";
    }
    const RestartSpec& r = plan.restart;
    out << "restart:      " << to_text(r.when) << ", backoff " << format_duration(r.backoff_min) << ".."
        << format_duration(r.backoff_max) << " (reset after " << format_duration(r.min_uptime) << " up), at most "
        << r.max_restarts << " restarts per slot in " << format_duration(r.window) << ", then "
        << (r.on_threshold == OnThreshold::exit ? "exit" : "park the slot") << "\n";
    out << "stop:         " << signal_name(plan.stop.signal) << ", SIGKILL after " << format_duration(plan.stop.timeout)
        << "\n";
    out << "output:       " << to_text(plan.log.format) << " (name " << plan.log.name << ")\n";
    if (plan.chdir) {
        out << "directory:    " << *plan.chdir << "\n";
    }
    for (const SlotSpec& slot : plan.slots) {
        SlotContext context{slot.slot, plan.workers, plan.listeners.empty() ? "" : plan.listeners.front().host,
                            plan.listeners.empty() ? "" : std::to_string(plan.listeners.front().port),
                            slot.cpu ? std::to_string(*slot.cpu) : ""};
        out << "slot " << slot.slot << ":       cpu " << (slot.cpu ? std::to_string(*slot.cpu) : "any") << "\n";
        out << "  argv:       " << quoted_join(expand_argv(slot.argv, context)) << "\n";
        std::vector<std::string> env = slot_environment(plan, context);
        env.erase(env.begin(), env.begin() + static_cast<std::ptrdiff_t>(plan.environment.size()));
        if (!plan.listeners.empty()) {
            env.emplace_back("LISTEN_PID=<worker pid>");
        }
        out << "  env:        " << quoted_join(env) << " (+ preforkctl's environment";
        out << (plan.environment.empty() ? "" : " and --env") << ")\n";
    }
    return out.str();
}

}  // namespace preforkctl::plan
