#include <algorithm>
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

const char* to_text(SocketMode mode) {
    switch (mode) {
        case SocketMode::shared: return "shared";
        case SocketMode::reuseport: return "reuseport";
        case SocketMode::child: return "child";
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

// "exit 3, 143; SIGTERM"
std::string describe_exits(const ExitMatch& match) {
    std::string codes;
    std::string signals;
    for (std::size_t code = 0; code < match.codes.size(); ++code) {
        if (match.codes.test(code)) codes += (codes.empty() ? "exit " : ", ") + std::to_string(code);
    }
    for (std::size_t sig = 0; sig < match.signals.size(); ++sig) {
        if (match.signals.test(sig)) signals += (signals.empty() ? "" : ", ") + signal_name(static_cast<int>(sig));
    }
    return codes + (codes.empty() || signals.empty() ? "" : "; ") + signals;
}

std::string join_numbers(const std::vector<unsigned>& numbers) {
    std::string out;
    for (const unsigned number : numbers) {
        if (!out.empty()) out += ',';  // not "," + std::to_string(n): a false -Wrestrict with GCC 12 at -O3
        out += std::to_string(number);
    }
    return out;
}

std::string short_name(int signal) {
    const std::string name = signal_name(signal);
    return name.starts_with("SIG") ? name.substr(3) : name;
}

// "USR1 as HUP, USR2, WINCH dropped, QUIT, ...": every forwarded signal, as it reaches the workers.
std::string describe_forwarding(const ForwardSpec& forward) {
    std::string out;
    for (const int signal : kForwardedSignals) {
        out += out.empty() ? "" : ", ";
        out += short_name(signal);
        if (const auto rewrite = forward.rewrites.find(signal); rewrite != forward.rewrites.end()) {
            out += rewrite->second == 0 ? " dropped" : " as " + short_name(rewrite->second);
        }
    }
    return out;
}

// "1..4 workers, one more after 1s of a non-empty accept queue, ..." (appended piece by piece: "literal" +
// std::string&& is a false -Wrestrict with GCC 12 at -O3).
std::string describe_elastic(const ElasticSpec& elastic) {
    std::string out = std::to_string(elastic.min);
    out += "..";
    out += std::to_string(elastic.max);
    out += " workers";
    if (elastic.min == 0) out += ", on demand (none until a connection waits)";
    out += ", one more after ";
    out += format_duration(elastic.scale_up_after);
    out += " of a non-empty accept queue, one fewer (the newest) after ";
    out += format_duration(elastic.scale_down_after);
    out += " of empty queues";
    return out;
}

// "above 512 MiB RSS (the worker's process tree); after 1h + 0..5m; one slot at a time, the new worker first"
std::string describe_recycle(const RecycleSpec& recycle) {
    std::string out;
    if (recycle.max_rss) {
        out += "above ";
        out += format_size(*recycle.max_rss);
        out += " RSS (the worker's process tree)";
    }
    if (recycle.max_lifetime) {
        out += out.empty() ? "after " : "; after ";
        out += format_duration(*recycle.max_lifetime);
        if (recycle.lifetime_jitter.count() > 0) {
            out += " + 0..";
            out += format_duration(recycle.lifetime_jitter);
        }
    }
    out += "; one slot at a time, the new worker first";
    return out;
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
    if (plan.elastic) out << "elastic:      " << describe_elastic(*plan.elastic) << "\n";
    out << "affinity:     "
        << (plan.affinity          ? "one CPU per slot, physical cores first"
            : plan.cpus_restricted ? "every worker on the --cpus set"
                                   : "off")
        << "\n";
    out << "socket mode:  " << to_text(plan.socket_mode) << (plan.adopted ? " (sockets adopted from systemd)" : "")
        << "\n";
    if (plan.socket_mode == SocketMode::reuseport && plan.tcp_migrate_req == 0) {
        out << "              net.ipv4.tcp_migrate_req = 0: restarts keep each slot's socket open, so queued\n"
               "              connections wait for the new worker; a slot that is removed resets its queue\n";
    }
    if (plan.fd_store || plan.stored_adopted) {
        out << "fd store:     " << (plan.fd_store ? "the listeners go to systemd's fd store (FDSTORE=1, FDNAME=their name)"
                                                   : "off")
            << (plan.stored_adopted ? "; some were taken back from it" : "") << "\n";
    }
    out << "steering:     "
        << (plan.steer == SteerMode::cpu ? "cpu (a connection goes to the slot pinned to the CPU that received it)"
                                         : "none")
        << "\n";
    if (plan.socket_mode == SocketMode::child) {
        out << "              workers bind HOST:PORT themselves with SO_REUSEPORT; connections queued on a\n"
               "              dying worker's socket are lost\n";
    }
    if (plan.preload_library) {
        out << "preload:      " << *plan.preload_library << "\n"
            << (plan.socket_mode == SocketMode::child
                    ? "              a worker's bind() to a listener's address gets SO_REUSEPORT first\n"
                    : "              a worker's bind() to a listener's address gets preforkctl's socket\n")
            << "              (not for static programs such as Go's, nor setuid ones: the loader skips them)\n";
    }
    if (plan.user) {
        out << "user:         " << plan.user->name << " (uid " << plan.user->uid << ", gid " << plan.user->gid
            << ", groups " << (plan.user->groups.empty() ? "none" : join_numbers(plan.user->groups))
            << (plan.user->in_passwd ? "" : "; no passwd entry") << ")\n";
    }
    if (plan.listeners.empty()) {
        out << "listeners:    none (LISTEN_FDS is not set)\n";
    }
    for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
        const ListenSpec& listener = plan.listeners[i];
        out << "listener:     " << (plan.socket_mode == SocketMode::child ? "bound by each worker"
                                                                           : "fd " + std::to_string(3 + i))
            << "  " << format_address(listener, listener.port);
        if (plan.socket_mode == SocketMode::reuseport) {
            out << " (one SO_REUSEPORT socket per slot)";
        }
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
    if (!r.success.empty()) out << "              success besides exit 0: " << describe_exits(r.success) << "\n";
    if (!r.prevent.empty()) out << "              never restarted after: " << describe_exits(r.prevent) << "\n";
    if (!r.force.empty()) out << "              always restarted after: " << describe_exits(r.force) << "\n";
    out << "stop:         " << signal_name(plan.stop.signal) << " to each worker's process group, SIGKILL after "
        << format_duration(plan.stop.timeout) << "\n";
    out << "forwarding:   " << describe_forwarding(plan.forward) << " to each worker"
        << (plan.forward.scope == SignalScope::group ? "'s process group" : " process only") << "\n";
    out << "ready:        ";
    switch (plan.ready.mode) {
        case ReadyMode::none: out << "none (a worker is ready once it runs)\n"; break;
        case ReadyMode::notify:
            out << "notify (READY=1 on the worker's own NOTIFY_SOCKET within " << format_duration(plan.ready.timeout)
                << ")\n";
            break;
        case ReadyMode::delay: out << "delay " << format_duration(plan.ready.delay) << "\n"; break;
    }
    if (plan.recycle.max_rss || plan.recycle.max_lifetime) {
        out << "recycle:      " << describe_recycle(plan.recycle) << "\n";
    }
    if (plan.watchdog) {
        out << "watchdog:     WATCHDOG=1 at least every " << format_duration(*plan.watchdog)
            << " once ready, else SIGABRT to the process group (SIGKILL after " << format_duration(plan.stop.timeout)
            << "), a failure\n";
    }
    if (plan.notify_socket) {
        out << "systemd:      READY=1, RELOADING=1, STOPPING=1 and STATUS= to " << *plan.notify_socket << "\n";
    }
    out << "output:       " << to_text(plan.log.format) << " (name " << plan.log.name << ", max line "
        << plan.log.max_line << " bytes, on overflow " << (plan.log.overflow == LogOverflow::block ? "block" : "drop")
        << ")\n";
    if (plan.chdir) {
        out << "directory:    " << *plan.chdir << "\n";
    }
    if (!plan.env_files.empty()) {
        std::string files;
        for (const std::string& file : plan.env_files) files += (files.empty() ? "" : ", ") + file;
        out << "env files:    " << files << " (a later file wins, --env over them all)\n";
    }
    out << "control:      " << (plan.control.socket ? *plan.control.socket : std::string("none (--control none)"));
    if (plan.control.socket && !plan.control.socket_required) out << " (if no other preforkctl holds it)";
    out << "\n";
    if (plan.control.metrics) {
        out << "metrics:      http://" << format_address(*plan.control.metrics, plan.control.metrics->port)
            << "/metrics\n";
    }
    out << "descriptors:  about " << plan.fds_needed << " for " << (plan.elastic ? "up to " : "")
        << (plan.elastic ? plan.elastic->max : plan.workers) << " workers, limit "
        << (plan.fd_limit == 0 ? "unknown" : std::to_string(plan.fd_limit));
    if (plan.worker_fd_limit) out << " (raised; workers get " << *plan.worker_fd_limit << ")";
    out << "\n";
    for (const SlotSpec& slot : plan.slots) {
        const SlotContext context = make_slot_context(plan, slot, {});
        out << "slot " << slot.slot << ":       "
            << (slot.cpus.empty()       ? "cpu any"
                : slot.cpus.size() == 1 ? "cpu " + std::to_string(slot.cpus.front())
                                        : "cpus " + format_cpu_list(slot.cpus))
            << "\n";
        out << "  argv:       " << quoted_join(expand_argv(slot.argv, context)) << "\n";
        std::vector<std::string> env;
        for (const std::string& entry : slot_environment(plan, context)) {
            const bool base = std::find(plan.environment.begin(), plan.environment.end(), entry) !=
                              plan.environment.end();
            const bool from_env = std::find(plan.env_added.begin(), plan.env_added.end(), entry) != plan.env_added.end();
            if (!base || from_env) env.push_back(entry);
        }
        const bool systemd = std::find(plan.fd_env.begin(), plan.fd_env.end(), FdDialect::systemd) != plan.fd_env.end();
        if (!plan.listeners.empty() && systemd && plan.socket_mode != SocketMode::child) {
            env.emplace_back("LISTEN_PID=<worker pid>");
        }
        if (plan.ready.mode == ReadyMode::notify || plan.watchdog) {
            env.emplace_back("NOTIFY_SOCKET=<the worker's own, in " + plan.notify_directory + ">");
        }
        out << "  env:        " << quoted_join(env) << " (+ preforkctl's environment)\n";
    }
    return out.str();
}

}  // namespace preforkctl::plan
