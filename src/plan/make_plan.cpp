#include "plan/make_plan.hpp"

#include <cerrno>
#include <cstring>

#include "plan/env_file.hpp"
#include "plan/planners.hpp"
#include "plan/setting_values.hpp"

namespace preforkctl::plan {

namespace {

bool is_ours(const std::string& entry) {
    static const char* const kOwned[] = {"LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "LISTEN_PIDFDID=",
                                         "PREFORK_SLOT=", "PREFORK_WORKERS=", "PREFORK_CPUS=",
                                         "PREFORK_GENERATION=", "PREFORK_REUSEPORT=", "EINHORN_FD_",
                                         "SERVER_STARTER_PORT=", "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "FDSTORE=",
                                         "WATCHDOG_PID=", "PREFORKCTL_PRELOAD_LISTENERS="};
    for (const char* prefix : kOwned) {
        if (entry.starts_with(prefix)) {
            return true;
        }
    }
    return false;
}

void set_variable(std::vector<std::string>& environment, const std::string& entry) {
    const std::string key = entry.substr(0, entry.find('=') + 1);
    for (std::string& existing : environment) {
        if (existing.starts_with(key)) {
            existing = entry;
            return;
        }
    }
    environment.push_back(entry);
}

std::string basename_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Status plan_output(const config::Settings& settings, const HostFacts& /*facts*/, Plan& plan) {
    auto format = parse_choice<LogFormat>(settings.log_format, "log-format", LogFormat::prefix,
                                          {{"prefix", LogFormat::prefix},
                                           {"json", LogFormat::json},
                                           {"raw", LogFormat::raw},
                                           {"inherit", LogFormat::inherit}});
    if (!format) return format.error();
    plan.log.format = *format;
    plan.log.timestamps = settings.timestamps && settings.timestamps->value;
    auto color = parse_choice<ColorMode>(settings.color, "color", ColorMode::automatic,
                                         {{"auto", ColorMode::automatic},
                                          {"always", ColorMode::always},
                                          {"never", ColorMode::never}});
    if (!color) return color.error();
    plan.log.color = *color;
    if (settings.max_line) {
        if (settings.max_line->value < 16 || settings.max_line->value > 16 * 1024 * 1024) {
            return setting_error(*settings.max_line, "max-line", "must be from 16 to 16777216 bytes");
        }
        plan.log.max_line = static_cast<std::size_t>(settings.max_line->value);
    }
    auto overflow = parse_choice<LogOverflow>(settings.log_overflow, "log-overflow", LogOverflow::block,
                                              {{"block", LogOverflow::block}, {"drop", LogOverflow::drop}});
    if (!overflow) return overflow.error();
    plan.log.overflow = *overflow;
    plan.log.name = settings.name ? settings.name->value : basename_of(plan.command.front());
    if (plan.log.name.empty()) {
        return setting_error(*settings.name, "name", "must not be empty");
    }
    return Ok{};
}

Status plan_environment(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    if (settings.chdir) {
        if (settings.chdir->value.empty()) return setting_error(*settings.chdir, "chdir", "must not be empty");
        if (facts.chdir_error != 0) {
            return setting_error(*settings.chdir, "chdir",
                                 "cannot use '" + settings.chdir->value + "' as the workers' directory: " +
                                     std::strerror(facts.chdir_error));
        }
        plan.chdir = settings.chdir->value;
    }
    for (const std::string& entry : facts.environment) {
        if (entry.starts_with("NOTIFY_SOCKET=") && entry.size() > 14) {
            plan.notify_socket = entry.substr(14);
        }
        if (!is_ours(entry)) {
            plan.environment.push_back(entry);
        }
    }
    // Every file in order, then every --env: a later file wins over an earlier one, and --env over them all.
    for (std::size_t i = 0; i < settings.env_file.size(); ++i) {
        const config::Setting<std::string>& file = settings.env_file[i];
        if (file.value.empty()) return setting_error(file, "env-file", "must not be empty");
        if (i >= facts.env_files.size()) return Error{"env file " + file.value + " was not read"};
        if (const int error = facts.env_files[i].error; error != 0) {
            return setting_error(file, "env-file", "cannot read '" + file.value + "': " + std::strerror(error));
        }
        auto assignments = parse_env_file(facts.env_files[i].text, file.value);
        if (!assignments) return assignments.error();
        for (const EnvAssignment& assignment : *assignments) {
            const std::string entry = assignment.name + "=" + assignment.value;
            set_variable(plan.environment, entry);
            plan.env_added.push_back(entry);
        }
        plan.env_files.push_back(file.value);
    }
    for (const auto& entry : settings.env) {
        const std::size_t eq = entry.value.find('=');
        if (eq == std::string::npos || eq == 0) {
            return setting_error(entry, "env", "expected K=V, got '" + entry.value + "'");
        }
        set_variable(plan.environment, entry.value);
        plan.env_added.push_back(entry.value);
    }
    return Ok{};
}

Result<Plan> make_plan(const config::Settings& settings, const HostFacts& facts) {
    Plan plan;
    plan.print_plan = settings.print_plan;
    plan.verbosity = settings.verbosity;

    if (!settings.command || settings.command->value.empty()) {
        return Error{"no command given: write it after '--' (preforkctl [OPTIONS] -- COMMAND [ARG...])", 0,
                     ExitCode::usage};
    }
    plan.command = settings.command->value;
    if (facts.command.error != 0) {
        return Error{"cannot execute " + plan.command.front() + ": " + std::strerror(facts.command.error),
                     facts.command.error,
                     facts.command.error == ENOENT ? ExitCode::not_found : ExitCode::not_executable};
    }
    plan.executable = facts.command.path;

    for (auto planner : {plan_cpus_and_workers, plan_sockets, plan_elastic, plan_user, plan_restart_and_stop,
                         plan_recycle_and_watchdog, plan_output, plan_control, plan_environment, plan_preload,
                         plan_fd_store, plan_descriptors}) {
        if (auto status = planner(settings, facts, plan); !status) return status.error();
    }

    // Slots.
    for (int slot = 0; slot < plan.workers; ++slot) {
        plan.slots.push_back(make_slot_spec(plan, slot));
    }
    return plan;
}

SlotContext make_slot_context(const Plan& plan, const SlotSpec& slot, const std::vector<std::uint16_t>& ports) {
    SlotContext context;
    context.slot = slot.slot;
    context.workers = plan.workers;
    context.cpus = format_cpu_list(slot.cpus);
    for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
        const ListenSpec& listener = plan.listeners[i];
        const std::uint16_t port = i < ports.size() ? ports[i] : listener.port;
        context.addresses.push_back(listener.kind == ListenSpec::Kind::unix_path ? listener.path
                                                                                 : format_address(listener, port));
        if (i == 0 && listener.kind != ListenSpec::Kind::unix_path) {
            context.host = listener.host;
            context.port = std::to_string(port);
        }
    }
    return context;
}

std::vector<std::string> expand_argv(const std::vector<std::string>& argv, const SlotContext& context) {
    const std::pair<std::string, std::string> values[] = {
        {"{slot}", std::to_string(context.slot)}, {"{workers}", std::to_string(context.workers)},
        {"{host}", context.host},                 {"{port}", context.port},
        {"{cpus}", context.cpus},
    };
    std::vector<std::string> expanded;
    expanded.reserve(argv.size());
    for (const std::string& arg : argv) {
        std::string out;
        for (std::size_t i = 0; i < arg.size();) {
            bool replaced = false;
            if (arg[i] == '{') {
                for (const auto& [key, value] : values) {
                    if (arg.compare(i, key.size(), key) == 0) {
                        out += value;
                        i += key.size();
                        replaced = true;
                        break;
                    }
                }
            }
            if (!replaced) {
                out += arg[i++];
            }
        }
        expanded.push_back(std::move(out));
    }
    return expanded;
}

namespace {

// The variables preforkctl adds for one worker, before they are merged into the base environment.
std::vector<std::string> added_variables(const Plan& plan, const SlotContext& context) {
    std::vector<std::string> env;
    env.push_back("PREFORK_SLOT=" + std::to_string(context.slot));
    env.push_back("PREFORK_WORKERS=" + std::to_string(context.workers));
    env.push_back("PREFORK_GENERATION=" + std::to_string(context.generation));
    if (!context.cpus.empty()) {
        env.push_back("PREFORK_CPUS=" + context.cpus);
    }
    if (plan.watchdog) {
        // systemd's WatchdogSec= protocol: sd_watchdog_enabled() reads it beside the worker's NOTIFY_SOCKET.
        env.push_back(std::string("WATCHDOG_USEC=") + std::to_string(plan.watchdog->count() * 1000));
    }
    if (plan.socket_mode == SocketMode::child) {
        // The worker binds its own SO_REUSEPORT socket (fasthttp's Reuseport style); nothing is inherited.
        env.push_back("PREFORK_REUSEPORT=1");
        env.push_back("HOST=" + context.host);
        env.push_back("PORT=" + context.port);
        return env;
    }
    if (plan.listeners.empty()) {
        return env;
    }
    for (FdDialect dialect : plan.fd_env) {
        switch (dialect) {
            case FdDialect::systemd: {
                std::string names;
                for (const ListenSpec& listener : plan.listeners) {
                    names += (names.empty() ? "" : ":") + listener.name;
                }
                env.push_back("LISTEN_FDS=" + std::to_string(plan.listeners.size()));
                env.push_back("LISTEN_FDNAMES=" + names);
                break;
            }
            case FdDialect::einhorn:
                env.push_back("EINHORN_FD_COUNT=" + std::to_string(plan.listeners.size()));
                for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
                    env.push_back("EINHORN_FD_" + std::to_string(i) + "=" + std::to_string(3 + i));
                }
                break;
            case FdDialect::server_starter: {
                // Server::Starter: "ADDRESS=FD" pairs joined by ';'.
                std::string ports;
                for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
                    const std::string address =
                        i < context.addresses.size() ? context.addresses[i] : format_address(plan.listeners[i], 0);
                    ports += (i == 0 ? "" : ";") + address + "=" + std::to_string(3 + i);
                }
                env.push_back("SERVER_STARTER_PORT=" + ports);
                break;
            }
        }
    }
    return env;
}

}  // namespace

std::vector<std::string> slot_environment(const Plan& plan, const SlotContext& context) {
    std::vector<std::string> env = plan.environment;
    for (const std::string& entry : added_variables(plan, context)) {
        set_variable(env, entry);
    }
    if (plan.preload_library) {
        std::string ld_preload;
        for (const std::string& entry : env) {
            if (entry.starts_with("LD_PRELOAD=")) ld_preload = entry.substr(11);
        }
        set_variable(env, "LD_PRELOAD=" + with_preload(ld_preload, *plan.preload_library));
        const std::string listeners = preload_listeners(plan, context);
        if (!listeners.empty()) set_variable(env, "PREFORKCTL_PRELOAD_LISTENERS=" + listeners);
    }
    return env;
}

}  // namespace preforkctl::plan
