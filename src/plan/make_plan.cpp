#include "plan/make_plan.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>

namespace preforkctl::plan {

namespace {

constexpr int kMaxWorkers = 4096;

// An error about one setting: flags are usage errors, config-file values are config errors.
template <class T>
Error setting_error(const config::Setting<T>& setting, const std::string& option, const std::string& why) {
    if (setting.origin.starts_with("-")) {
        return Error{setting.origin + ": " + why, 0, ExitCode::usage};
    }
    return Error{setting.origin + ": " + option + ": " + why, 0, ExitCode::config};
}

template <class T, class Parse>
auto parse_setting(const std::optional<config::Setting<std::string>>& setting, const std::string& option,
                   T fallback, Parse parse) -> Result<T> {
    if (!setting) {
        return fallback;
    }
    auto parsed = parse(setting->value);
    if (!parsed) {
        return setting_error(*setting, option, parsed.error().message);
    }
    return *parsed;
}

template <class Enum>
Result<Enum> parse_choice(const std::optional<config::Setting<std::string>>& setting, const std::string& option,
                          Enum fallback, std::initializer_list<std::pair<const char*, Enum>> choices) {
    return parse_setting<Enum>(setting, option, fallback, [&](const std::string& value) -> Result<Enum> {
        std::string names;
        for (const auto& [name, choice] : choices) {
            if (value == name) {
                return choice;
            }
            names += names.empty() ? name : std::string("|") + name;
        }
        return Error{"must be one of " + names + ", got '" + value + "'"};
    });
}

Result<Millis> parse_duration_setting(const std::optional<config::Setting<std::string>>& setting,
                                      const std::string& option, Millis fallback) {
    return parse_setting<Millis>(setting, option, fallback, [](const std::string& v) { return parse_duration(v); });
}

struct Backoff {
    Millis min;
    Millis max;
};

Result<Backoff> parse_backoff(const std::string& text) {
    const std::size_t dots = text.find("..");
    if (dots == std::string::npos) {
        return Error{"expected MIN..MAX, e.g. 100ms..10s, got '" + text + "'"};
    }
    auto min = parse_duration(text.substr(0, dots));
    auto max = parse_duration(text.substr(dots + 2));
    if (!min) return min.error();
    if (!max) return max.error();
    if (min->count() == 0) {
        return Error{"MIN must be above 0 (a restart loop needs a delay), got '" + text + "'"};
    }
    if (*max < *min) {
        return Error{"MAX is below MIN in '" + text + "'"};
    }
    return Backoff{*min, *max};
}

// "none", "notify" or "delay:DUR".
Result<ReadySpec> parse_ready(const std::string& text) {
    ReadySpec spec;
    if (text == "none") return spec;
    if (text == "notify") {
        spec.mode = ReadyMode::notify;
        return spec;
    }
    if (text.starts_with("delay:")) {
        auto delay = parse_duration(text.substr(6));
        if (!delay) return delay.error();
        spec.mode = ReadyMode::delay;
        spec.delay = *delay;
        return spec;
    }
    return Error{"must be none, notify or delay:DUR (e.g. delay:2s), got '" + text + "'"};
}

// Comma-separated items, spaces around each one trimmed; an empty item is kept (and rejected by the caller).
std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const std::size_t first = item.find_first_not_of(" \t");
        const std::size_t last = item.find_last_not_of(" \t");
        items.push_back(first == std::string::npos ? "" : item.substr(first, last - first + 1));
        if (comma == std::string::npos) return items;
        start = comma + 1;
    }
}

// "143,TERM,3": numbers are exit codes 0..255, names (or SIGnames) are deaths by that signal.
Result<ExitMatch> parse_exit_match(const std::string& text) {
    ExitMatch match;
    for (const std::string& item : split_list(text)) {
        if (item.empty()) {
            return Error{"expected exit codes 0-255 and signal names separated by commas (e.g. 143,TERM), got '" +
                         text + "'"};
        }
        if (std::isdigit(static_cast<unsigned char>(item.front())) != 0) {
            int code = -1;
            auto [rest, ec] = std::from_chars(item.data(), item.data() + item.size(), code);
            if (ec != std::errc{} || rest != item.data() + item.size() || code < 0 || code > 255) {
                return Error{"exit codes are 0 to 255, got '" + item + "' (a signal is written by name, e.g. TERM)"};
            }
            match.codes.set(static_cast<std::size_t>(code));
            continue;
        }
        auto signal = parse_signal(item);
        if (!signal || *signal >= static_cast<int>(match.signals.size())) {
            return Error{"'" + item + "' is neither an exit code (0-255) nor a signal name"};
        }
        match.signals.set(static_cast<std::size_t>(*signal));
    }
    return match;
}

// The first status that both sets list, as the user would write it ("3", "SIGTERM"), or "".
std::string first_overlap(const ExitMatch& a, const ExitMatch& b) {
    for (std::size_t code = 0; code < a.codes.size(); ++code) {
        if (a.codes.test(code) && b.codes.test(code)) return "exit code " + std::to_string(code);
    }
    for (std::size_t sig = 0; sig < a.signals.size(); ++sig) {
        if (a.signals.test(sig) && b.signals.test(sig)) return signal_name(static_cast<int>(sig));
    }
    return "";
}

// "USR1:USR2" or "WINCH:0" (0 drops the signal); several may be joined with commas.
Result<std::vector<std::pair<int, int>>> parse_rewrites(const std::string& text) {
    std::vector<std::pair<int, int>> rewrites;
    for (const std::string& item : split_list(text)) {
        const std::size_t colon = item.find(':');
        if (colon == std::string::npos) {
            return Error{"expected FROM:TO (e.g. USR1:HUP, or WINCH:0 to drop it), got '" + item + "'"};
        }
        auto from = parse_signal(item.substr(0, colon));
        if (!from) return from.error();
        if (!is_forwarded_signal(*from)) {
            std::string why = signal_name(*from) + " is not forwarded to the workers, so it cannot be rewritten";
            if (*from == SIGTERM || *from == SIGINT) why += " (use --stop-signal to choose what a stop sends)";
            std::string forwarded;
            for (const int signal : kForwardedSignals) {
                forwarded += (forwarded.empty() ? "" : ", ") + signal_name(signal).substr(3);  // without "SIG"
            }
            return Error{why + "; only the forwarded ones can (" + forwarded + ")"};
        }
        const std::string to_text = item.substr(colon + 1);
        int to = 0;
        if (to_text != "0") {
            auto parsed = parse_signal(to_text);
            if (!parsed) return parsed.error();
            to = *parsed;
        }
        rewrites.emplace_back(*from, to);
    }
    return rewrites;
}

bool is_ours(const std::string& entry) {
    static const char* const kOwned[] = {"LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "LISTEN_PIDFDID=",
                                         "PREFORK_SLOT=", "PREFORK_WORKERS=", "PREFORK_CPUS=",
                                         "PREFORK_GENERATION=", "PREFORK_REUSEPORT=", "EINHORN_FD_",
                                         "SERVER_STARTER_PORT=", "NOTIFY_SOCKET="};
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

Result<std::vector<FdDialect>> parse_dialects(const std::string& text) {
    std::vector<FdDialect> dialects;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = text.find(',', start);
        const std::string name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        FdDialect dialect{};
        if (name == "systemd") dialect = FdDialect::systemd;
        else if (name == "einhorn") dialect = FdDialect::einhorn;
        else if (name == "server-starter") dialect = FdDialect::server_starter;
        else return Error{"unknown dialect '" + name + "' (systemd, einhorn, server-starter)"};
        if (std::find(dialects.begin(), dialects.end(), dialect) == dialects.end()) dialects.push_back(dialect);
        if (comma == std::string::npos) return dialects;
        start = comma + 1;
    }
}

// Listeners from --listen, or adopted from systemd, checked against the socket mode.
Status plan_listeners(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    if (!facts.inherited_error.empty()) {
        return Error{facts.inherited_error, 0, ExitCode::config};
    }
    if (!facts.inherited.empty()) {
        if (!settings.listen.empty()) {
            return setting_error(settings.listen.front(), "listen",
                                 "preforkctl was given " + std::to_string(facts.inherited.size()) +
                                     " socket(s) by systemd (LISTEN_FDS); drop --listen or the socket unit");
        }
        if (plan.socket_mode != SocketMode::shared) {
            return setting_error(*settings.socket_mode, "socket-mode",
                                 "sockets inherited from systemd can only be shared");
        }
        plan.adopted = true;
        for (const InheritedSocket& socket : facts.inherited) {
            ListenSpec spec;
            spec.kind = ListenSpec::Kind::inherited;
            spec.inherited_fd = socket.fd;
            spec.name = socket.name;
            spec.text = socket.address;
            spec.host = socket.host;
            spec.port = static_cast<std::uint16_t>(socket.port);
            plan.listeners.push_back(spec);
        }
        return Ok{};
    }
    for (const auto& listen : settings.listen) {
        auto spec = parse_listen(listen.value);
        if (!spec) return setting_error(listen, "listen", spec.error().message);
        if (plan.socket_mode != SocketMode::shared && spec->kind == ListenSpec::Kind::unix_path) {
            return setting_error(listen, "listen", "unix sockets can only be shared (SO_REUSEPORT is for TCP)");
        }
        if (plan.socket_mode == SocketMode::child && spec->port == 0) {
            return setting_error(listen, "listen", "--socket-mode child needs a fixed port: each worker binds it");
        }
        plan.listeners.push_back(*spec);
    }
    if (plan.socket_mode == SocketMode::child && plan.listeners.size() != 1) {
        return setting_error(*settings.socket_mode, "socket-mode",
                             "child mode needs exactly one --listen address (passed as HOST and PORT)");
    }
    return Ok{};
}

}  // namespace

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

    // CPUs and workers (§4).
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

    // Sockets (§5).
    auto mode = parse_choice<SocketMode>(settings.socket_mode, "socket-mode", SocketMode::shared,
                                         {{"shared", SocketMode::shared},
                                          {"reuseport", SocketMode::reuseport},
                                          {"child", SocketMode::child}});
    if (!mode) return mode.error();
    plan.socket_mode = *mode;
    plan.tcp_migrate_req = facts.tcp_migrate_req;
    if (auto listeners = plan_listeners(settings, facts, plan); !listeners) return listeners.error();
    auto dialects = parse_setting<std::vector<FdDialect>>(settings.fd_env, "fd-env", plan.fd_env, parse_dialects);
    if (!dialects) return dialects.error();
    plan.fd_env = *dialects;
    if (settings.user) {
        if (!facts.user || !facts.user->found) {
            return setting_error(*settings.user, "user", facts.user ? facts.user->error : "user was not looked up");
        }
        plan.user = Credentials{settings.user->value, facts.user->uid, facts.user->gid, facts.user->groups};
    }

    // Restart and stop policy (§6, §7).
    auto when = parse_choice<RestartWhen>(settings.restart, "restart", RestartWhen::always,
                                          {{"always", RestartWhen::always},
                                           {"on-failure", RestartWhen::on_failure},
                                           {"never", RestartWhen::never}});
    if (!when) return when.error();
    plan.restart.when = *when;
    auto success = parse_setting<ExitMatch>(settings.success_exit, "success-exit", {}, parse_exit_match);
    if (!success) return success.error();
    plan.restart.success = *success;
    auto prevent = parse_setting<ExitMatch>(settings.restart_prevent, "restart-prevent", {}, parse_exit_match);
    if (!prevent) return prevent.error();
    plan.restart.prevent = *prevent;
    auto force = parse_setting<ExitMatch>(settings.restart_force, "restart-force", {}, parse_exit_match);
    if (!force) return force.error();
    plan.restart.force = *force;
    if (const std::string both = first_overlap(*prevent, *force); !both.empty()) {
        return setting_error(*settings.restart_force, "restart-force",
                             both + " is also listed in --restart-prevent; a status can be in only one of them");
    }
    if (settings.max_restarts) {
        if (settings.max_restarts->value < 0 || settings.max_restarts->value > 1'000'000) {
            return setting_error(*settings.max_restarts, "max-restarts", "must be a number from 0 to 1000000");
        }
        plan.restart.max_restarts = static_cast<int>(settings.max_restarts->value);
    }
    auto window = parse_duration_setting(settings.restart_window, "restart-window", plan.restart.window);
    if (!window) return window.error();
    plan.restart.window = *window;
    auto backoff = parse_setting<Backoff>(settings.backoff, "backoff",
                                          Backoff{plan.restart.backoff_min, plan.restart.backoff_max}, parse_backoff);
    if (!backoff) return backoff.error();
    plan.restart.backoff_min = backoff->min;
    plan.restart.backoff_max = backoff->max;
    auto uptime = parse_duration_setting(settings.min_uptime, "min-uptime", plan.restart.min_uptime);
    if (!uptime) return uptime.error();
    plan.restart.min_uptime = *uptime;
    auto on_threshold = parse_choice<OnThreshold>(settings.on_threshold, "on-threshold", OnThreshold::exit,
                                                  {{"exit", OnThreshold::exit}, {"park", OnThreshold::park}});
    if (!on_threshold) return on_threshold.error();
    plan.restart.on_threshold = *on_threshold;
    auto stop_signal = parse_setting<int>(settings.stop_signal, "stop-signal", plan.stop.signal,
                                          [](const std::string& v) { return parse_signal(v); });
    if (!stop_signal) return stop_signal.error();
    plan.stop.signal = *stop_signal;
    auto stop_timeout = parse_duration_setting(settings.stop_timeout, "stop-timeout", plan.stop.timeout);
    if (!stop_timeout) return stop_timeout.error();
    plan.stop.timeout = *stop_timeout;
    auto scope = parse_choice<SignalScope>(settings.signal_scope, "signal-scope", SignalScope::group,
                                           {{"group", SignalScope::group}, {"worker", SignalScope::worker}});
    if (!scope) return scope.error();
    plan.forward.scope = *scope;
    for (const auto& rewrite : settings.rewrite_signal) {
        auto pairs = parse_rewrites(rewrite.value);
        if (!pairs) return setting_error(rewrite, "rewrite-signal", pairs.error().message);
        for (const auto& [from, to] : *pairs) {
            if (!plan.forward.rewrites.emplace(from, to).second) {
                return setting_error(rewrite, "rewrite-signal", signal_name(from) + " is rewritten twice");
            }
        }
    }
    auto ready = parse_setting<ReadySpec>(settings.ready, "ready", plan.ready, parse_ready);
    if (!ready) return ready.error();
    plan.ready = *ready;
    auto ready_timeout = parse_duration_setting(settings.ready_timeout, "ready-timeout", plan.ready.timeout);
    if (!ready_timeout) return ready_timeout.error();
    if (ready_timeout->count() == 0) return setting_error(*settings.ready_timeout, "ready-timeout", "must be above 0");
    plan.ready.timeout = *ready_timeout;

    // Output (§8).
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

    // Worker environment and directory (§3).
    if (settings.chdir) {
        if (settings.chdir->value.empty()) return setting_error(*settings.chdir, "chdir", "must not be empty");
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
    for (const auto& entry : settings.env) {
        const std::size_t eq = entry.value.find('=');
        if (eq == std::string::npos || eq == 0) {
            return setting_error(entry, "env", "expected K=V, got '" + entry.value + "'");
        }
        set_variable(plan.environment, entry.value);
    }

    // Slots.
    for (int slot = 0; slot < plan.workers; ++slot) {
        plan.slots.push_back(make_slot_spec(plan, slot));
    }
    return plan;
}

bool is_forwarded_signal(int signal) {
    return std::find(kForwardedSignals.begin(), kForwardedSignals.end(), signal) != kForwardedSignals.end();
}

SlotSpec make_slot_spec(const Plan& plan, int slot) {
    SlotSpec spec;
    spec.slot = slot;
    if (plan.affinity) {
        const std::vector<int> cpu_of_slot = map_slots_to_cpus(plan.budget, slot + 1);
        if (!cpu_of_slot.empty()) spec.cpu = cpu_of_slot.back();
    }
    spec.argv = plan.command;
    return spec;
}

SlotContext make_slot_context(const Plan& plan, const SlotSpec& slot, const std::vector<std::uint16_t>& ports) {
    SlotContext context;
    context.slot = slot.slot;
    context.workers = plan.workers;
    context.cpus = slot.cpu ? std::to_string(*slot.cpu) : "";
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
    return env;
}

}  // namespace preforkctl::plan
