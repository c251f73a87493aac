#include "plan/reload.hpp"

#include <algorithm>

namespace preforkctl::plan {

namespace {

// The CPUs each planned slot gets: what --affinity and --cpus decide.
std::vector<CpuList> slot_cpus(const Plan& plan) {
    std::vector<CpuList> cpus;
    for (const SlotSpec& slot : plan.slots) cpus.push_back(slot.cpus);
    return cpus;
}

bool listed(const std::vector<std::string>& values, const std::string& value) {
    return std::find(values.begin(), values.end(), value) != values.end();
}

// Which shared listeners a reload binds and closes, by the --listen text.
void plan_listener_changes(const Plan& running, const Plan& reread, ReloadPlan& reload) {
    for (std::size_t i = 0; i < running.listen_given.size() && i < running.listeners.size(); ++i) {
        if (!listed(reread.listen_given, running.listen_given[i])) reload.listeners_removed.push_back(i);
    }
    for (std::size_t i = 0; i < reread.listen_given.size() && i < reread.listeners.size(); ++i) {
        if (!listed(running.listen_given, reread.listen_given[i])) reload.listeners_added.push_back(i);
    }
    if (!reload.listeners_added.empty() || !reload.listeners_removed.empty()) reload.applied.emplace_back("--listen");
}

// Runs `take` and names `option` as applied when `changed`.
template <class Take>
void take_over(bool changed, const char* option, ReloadPlan& reload, Take take) {
    if (!changed) return;
    take();
    reload.applied.emplace_back(option);
}

}  // namespace

ReloadPlan plan_reload(const Plan& running, const Plan& reread) {
    ReloadPlan reload;
    reload.next = running;
    Plan& next = reload.next;
    next.warnings.clear();

    const bool fixed_count = !running.elastic && !reread.elastic;
    take_over(fixed_count && reread.workers != running.workers, "--workers", reload, [&] {
        next.workers = reread.workers;
        next.workers_source = reread.workers_source;
        reload.workers_changed = true;
    });
    if (!fixed_count && running.elastic != reread.elastic) reload.kept.emplace_back("--workers (elastic bounds)");
    take_over(reread.command != running.command || reread.executable != running.executable, "the command", reload,
              [&] {
                  next.command = reread.command;
                  next.executable = reread.executable;
              });
    take_over(reread.environment != running.environment, "--env/--env-file", reload, [&] {
        next.environment = reread.environment;
        next.env_added = reread.env_added;
        next.env_files = reread.env_files;
    });
    take_over(reread.user != running.user, "--user", reload, [&] { next.user = reread.user; });
    take_over(reread.chdir != running.chdir, "--chdir", reload, [&] { next.chdir = reread.chdir; });
    take_over(reread.affinity != running.affinity || reread.cpus_restricted != running.cpus_restricted ||
                  slot_cpus(reread) != slot_cpus(running),
              "--affinity/--cpus", reload, [&] {
                  next.affinity = reread.affinity;
                  next.cpus_restricted = reread.cpus_restricted;
              });
    take_over(reread.restart != running.restart, "the restart policy", reload, [&] { next.restart = reread.restart; });
    take_over(reread.stop != running.stop, "--stop-signal/--stop-timeout", reload, [&] { next.stop = reread.stop; });
    take_over(reread.forward != running.forward, "--signal-scope/--rewrite-signal", reload,
              [&] { next.forward = reread.forward; });
    take_over(reread.ready != running.ready, "--ready", reload, [&] { next.ready = reread.ready; });
    take_over(reread.recycle != running.recycle, "--max-rss/--max-lifetime", reload,
              [&] { next.recycle = reread.recycle; });
    take_over(reread.watchdog != running.watchdog, "--watchdog", reload, [&] { next.watchdog = reread.watchdog; });
    next.notify_directory = reread.notify_directory;  // follows --ready, --watchdog and --user
    take_over(reread.preload_library != running.preload_library, "--preload", reload,
              [&] { next.preload_library = reread.preload_library; });
    take_over(reread.fd_env != running.fd_env, "--fd-env", reload, [&] { next.fd_env = reread.fd_env; });
    // Follow what the re-read settings decided, whether or not an option above names it.
    next.budget = reread.budget;
    next.slots = reread.slots;
    next.worker_fd_limit = reread.worker_fd_limit;

    if (reread.listen_given != running.listen_given) {
        const bool shared = running.socket_mode == SocketMode::shared && reread.socket_mode == SocketMode::shared;
        if (!shared || running.adopted) {
            reload.kept.emplace_back("--listen");
        } else {
            plan_listener_changes(running, reread, reload);
        }
    }
    if (reread.socket_mode != running.socket_mode) reload.kept.emplace_back("--socket-mode");
    if (reread.steer != running.steer) reload.kept.emplace_back("--steer");
    if (reread.log != running.log) reload.kept.emplace_back("the output settings (--log-format, --name, ...)");
    if (reread.control != running.control) reload.kept.emplace_back("--control/--metrics");
    if (reread.fd_store != running.fd_store) reload.kept.emplace_back("--fd-store");
    return reload;
}

}  // namespace preforkctl::plan
