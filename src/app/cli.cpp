#include "app/cli.hpp"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string_view>

#include "sys/exit_code.hpp"

namespace preforkctl::app {

namespace {

constexpr const char* kDescription =
    "preforkctl runs N copies of an unmodified server program behind one listening address: it binds the "
    "address once and hands the socket to every worker as fd 3 (systemd LISTEN_FDS protocol), pins workers "
    "to CPUs, restarts workers that die and merges their output line by line.";

constexpr const char* kFooter =
    "Signals: TERM/INT stop gracefully (a second one kills); HUP rolling restart; TTIN/TTOU one worker more/"
    "fewer; TSTP/CONT suspend/resume the workers; USR1, USR2, WINCH, QUIT, ALRM, PWR, URG, IO, VTALRM, PROF and STKFLT are forwarded to every worker "
    "(--signal-scope, --rewrite-signal).\n`preforkctl ctl [--name NAME|--socket PATH] status|scale|restart|reload|"
    "stop|signal|upgrade` steers a running preforkctl (preforkctl ctl --help).\nExit status: 0 clean stop, 1 internal failure, 2 usage, 3 config file, 4 "
    "socket, 5 restart threshold, 126/127 command not executable/not found; when --restart lets every slot end, "
    "the first failing worker's status (128+N for signal N; --success-exit is not a failure).\nSee preforkctl(1).";

}  // namespace

namespace {

// Defines every option, then parses argv, or (with `table`) only lists the options for the completion scripts.
CommandLine parse(int argc, char** argv, std::vector<OptionEntry>* table) {
    CLI::App app(kDescription, "preforkctl");
    app.footer(kFooter);
    app.set_version_flag("-V,--version", std::string("preforkctl ") + PREFORKCTL_VERSION);
    app.get_formatter()->column_width(36);

    std::string workers, cpus, socket_mode, steer, restart, restart_window, backoff, min_uptime, on_threshold;
    std::string stop_signal, stop_timeout, ready, ready_timeout, log_format, log_overflow, color, name, chdir;
    std::string config_file, fd_env, user, control, metrics;
    std::string success_exit, restart_prevent, restart_force, signal_scope;
    std::string scale_up_after, scale_down_after, max_rss, max_lifetime, lifetime_jitter, watchdog;
    std::int64_t max_restarts = 0;
    std::int64_t max_line = 0;
    std::vector<std::string> listen, env, env_file, command, rewrite_signal;
    bool affinity = false;
    bool preload = false;
    bool fd_store = false;
    bool timestamps = false;
    bool print_plan = false;
    int verbose = 0;
    int quiet = 0;

    auto* o_workers = app.add_option("-n,--workers", workers, "Number of worker slots, or 'auto' (default auto: "
                                     "the CPUs this process may use, cgroup quota included), or MIN..MAX to follow "
                                     "the listeners' accept queues (MIN 0: none until a connection waits)");
    auto* o_scale_up_after = app.add_option("--scale-up-after", scale_up_after,
                                            "With -n MIN..MAX: one more worker once a listener's accept queue has "
                                            "been non-empty this long (default 1s)");
    auto* o_scale_down_after = app.add_option("--scale-down-after", scale_down_after,
                                              "With -n MIN..MAX: one fewer worker once every accept queue has been "
                                              "empty this long (default 30s)");
    auto* o_cpus = app.add_option("--cpus", cpus, "Use only these CPUs, e.g. 0-3,8 (must be allowed to this process); "
                                  "every worker is confined to them");
    auto* o_affinity = app.add_flag("--affinity", affinity, "Pin slot i to one CPU, physical cores before SMT siblings");
    auto* o_listen = app.add_option("-l,--listen", listen,
                                    "Listen address, repeatable: HOST:PORT, :PORT, [V6]:PORT or unix:/path, with "
                                    "options ,name=N ,backlog=N ,mode=0660; port 0 = ephemeral");
    auto* o_socket_mode = app.add_option("--socket-mode", socket_mode,
                                         "shared (default: one socket for all), reuseport (one SO_REUSEPORT socket "
                                         "per slot, held by preforkctl) or child (workers bind HOST:PORT themselves)");
    auto* o_steer = app.add_option("--steer", steer,
                                   "none (default) or cpu: a connection goes to the worker pinned to the CPU that "
                                   "received it (needs --socket-mode reuseport and --affinity)");
    auto* o_preload = app.add_flag("--preload", preload,
                                   "Inject libpreforkctl-preload.so into the workers: a server's own bind() to a "
                                   "--listen address gets preforkctl's socket (child mode: SO_REUSEPORT)");
    auto* o_fd_store = app.add_flag("--fd-store", fd_store,
                                    "Under systemd, keep the listening sockets in its fd store (FDSTORE=1, named): a "
                                    "restart adopts them and no connection is refused; the unit needs "
                                    "FileDescriptorStoreMax= (on by itself when systemd sets $FDSTORE)");
    auto* o_fd_env = app.add_option("--fd-env", fd_env,
                                    "How workers learn their fds: comma list of systemd (default), einhorn, "
                                    "server-starter; not with --socket-mode child");
    auto* o_user = app.add_option("--user", user, "Run workers as USER[:GROUP], names or numbers (a uid without a "
                                "passwd entry gets gid 0 unless GROUP is given); needs root; sockets are bound first");
    auto* o_restart = app.add_option("--restart", restart, "always (default), on-failure or never");
    auto* o_success_exit = app.add_option("--success-exit", success_exit,
                                          "Exit codes and signal names (e.g. 143,TERM) that count as success besides "
                                          "0: no restart with on-failure, never preforkctl's failing status");
    auto* o_restart_prevent = app.add_option("--restart-prevent", restart_prevent,
                                             "Exit codes and signal names after which a worker is never restarted, "
                                             "whatever --restart says");
    auto* o_restart_force = app.add_option("--restart-force", restart_force,
                                           "Exit codes and signal names after which a worker is restarted even with "
                                           "--restart on-failure or never");
    auto* o_max_restarts = app.add_option("--max-restarts", max_restarts,
                                          "Restarts allowed per slot within --restart-window (default 10)");
    auto* o_restart_window = app.add_option("--restart-window", restart_window, "Sliding window, above 0 (default 60s)");
    auto* o_backoff = app.add_option("--backoff", backoff, "Restart delay MIN..MAX, doubling (default 100ms..10s)");
    auto* o_min_uptime = app.add_option("--min-uptime", min_uptime,
                                        "Uptime after which the delay resets to MIN (default 2s)");
    auto* o_on_threshold = app.add_option("--on-threshold", on_threshold,
                                          "exit (default: stop all, exit 5) or park (the slot stays down)");
    auto* o_stop_signal = app.add_option("--stop-signal", stop_signal, "Graceful stop signal (default TERM); one that "
                                       "ends a process by default (not STOP, CONT, CHLD, ...)");
    auto* o_stop_timeout = app.add_option("--stop-timeout", stop_timeout,
                                          "Time to wait before SIGKILL on stop (default 10s)");
    auto* o_signal_scope = app.add_option("--signal-scope", signal_scope,
                                          "Forward USR1, USR2, WINCH and the other forwarded signals to each worker's process group (default: "
                                          "group) or to the worker process only (worker); a stop always reaches "
                                          "the group");
    auto* o_rewrite_signal = app.add_option("--rewrite-signal", rewrite_signal,
                                            "FROM:TO, repeatable: forward a forwarded signal (USR1, USR2, WINCH, QUIT, ...) as signal TO instead "
                                            "(0 drops it), e.g. USR1:HUP, WINCH:0");
    auto* o_ready = app.add_option("--ready", ready,
                                   "When a worker counts as ready (rolling restarts, systemd READY=1): none "
                                   "(default: once it runs), notify (it, or a process below it, sends READY=1 to its NOTIFY_SOCKET) or "
                                   "delay:DUR");
    auto* o_ready_timeout = app.add_option("--ready-timeout", ready_timeout,
                                           "With --ready notify: a worker not ready by then is killed, a failed "
                                           "start (default 60s); a warning without it");
    auto* o_max_rss = app.add_option("--max-rss", max_rss,
                                     "Replace a worker whose process tree uses more memory than SIZE, e.g. 512M "
                                     "(K, M, G, T: KiB to TiB), new worker first");
    auto* o_max_lifetime = app.add_option("--max-lifetime", max_lifetime,
                                          "Replace a worker once it has run this long, new worker first");
    auto* o_lifetime_jitter = app.add_option("--lifetime-jitter", lifetime_jitter,
                                             "Add 0 to DUR to each worker's --max-lifetime, so that workers do not "
                                             "recycle together (default 0)");
    auto* o_watchdog = app.add_option("--watchdog", watchdog,
                                      "A ready worker must send WATCHDOG=1 to its NOTIFY_SOCKET this often, or it is "
                                      "killed with SIGABRT and counts as a failure");
    auto* o_log_format = app.add_option("--log-format", log_format,
                                        "prefix (default: 'NAME.SLOT | line'), json, raw or inherit (no pipes)");
    auto* o_timestamps = app.add_flag("--timestamps", timestamps, "Prefix each line with a UTC timestamp");
    auto* o_color = app.add_option("--color", color, "auto (default: on a tty without NO_COLOR), always or never");
    auto* o_max_line = app.add_option("--max-line", max_line,
                                      "Split lines longer than this many bytes (default 16384); pieces after the "
                                      "first are marked '+'");
    auto* o_log_overflow = app.add_option("--log-overflow", log_overflow,
                                          "When preforkctl's stdout/stderr cannot keep up: block (default: stop "
                                          "reading workers, lossless) or drop (discard and count whole lines)");
    auto* o_name = app.add_option("--name", name, "NAME in the output prefix and of the control socket (default: "
                                  "the command's basename)");
    auto* o_control = app.add_option("--control", control,
                                     "Control socket for `preforkctl ctl`: PATH, auto (default: "
                                     "$XDG_RUNTIME_DIR/preforkctl/NAME.sock, /run/preforkctl/NAME.sock for root) "
                                     "or none");
    auto* o_metrics = app.add_option("--metrics", metrics, "Serve Prometheus metrics at http://HOST:PORT/metrics "
                                     "(:PORT = every interface)");
    auto* o_chdir = app.add_option("--chdir", chdir, "Working directory of the workers (relative: to where "
                                  "preforkctl started; default: there); must exist");
    auto* o_env = app.add_option("-e,--env", env, "Extra worker environment K=V, repeatable; wins over --env-file");
    auto* o_env_file = app.add_option("--env-file", env_file,
                                      "Worker environment from a file of KEY=VALUE lines, as docker --env-file and "
                                      "systemd EnvironmentFile= read them (relative: to where preforkctl started); "
                                      "repeatable, a later file wins; read again on SIGHUP and ctl reload");
    app.add_flag("--print-plan", print_plan, "Print the resolved plan and exit");
    app.add_option("-c,--config", config_file,
                   "TOML config file (keys = long options; the command line wins); read again on SIGHUP and ctl reload");
    app.add_flag("-v,--verbose", verbose, "More diagnostics (repeatable)");
    app.add_flag("-q,--quiet", quiet, "Only warnings and errors");
    app.add_option("command", command, "The server command and its arguments, after --");
    if (table != nullptr) {
        for (const CLI::Option* option : app.get_options()) {
            if (option->get_lnames().empty()) continue;  // the command
            table->push_back(describe_option(option->get_lnames().front(),
                                             option->get_snames().empty() ? "" : option->get_snames().front(),
                                             option->get_description(), option->get_expected_min() > 0));
        }
        return {};
    }

    // Everything after the first "--" is the command, verbatim: CLI11 alone would still match a command
    // argument such as "-c" (sh -c) against preforkctl's own options.
    std::vector<std::string> own_args;
    std::vector<std::string> after_separator;
    bool separator_seen = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (!separator_seen && arg == "--") {
            separator_seen = true;
        } else {
            (separator_seen ? after_separator : own_args).push_back(arg);
        }
    }
    std::reverse(own_args.begin(), own_args.end());  // CLI11 takes a reversed vector

    CommandLine result;
    try {
        app.parse(own_args);
        if (separator_seen) {
            if (!command.empty()) {
                throw CLI::ExtrasError({command.front() + " (the command goes after --)"});
            }
            command = after_separator;
        }
    } catch (const CLI::CallForHelp& e) {
        result.exit_now = app.exit(e);
        return result;
    } catch (const CLI::CallForVersion& e) {
        result.exit_now = app.exit(e);
        return result;
    } catch (const CLI::ParseError& e) {
        spdlog::error("{}", e.what());
        result.exit_now = to_int(ExitCode::usage);
        return result;
    }

    config::Settings& s = result.settings;
    auto text = [](CLI::Option* option, const std::string& value, std::optional<config::Setting<std::string>>& into) {
        if (option->count() > 0) into = config::Setting<std::string>{value, option->get_name()};
    };
    auto flag = [](CLI::Option* option, bool value, std::optional<config::Setting<bool>>& into) {
        if (option->count() > 0) into = config::Setting<bool>{value, option->get_name()};
    };
    auto number = [](CLI::Option* option, std::int64_t value, std::optional<config::Setting<std::int64_t>>& into) {
        if (option->count() > 0) into = config::Setting<std::int64_t>{value, option->get_name()};
    };
    text(o_workers, workers, s.workers);
    text(o_cpus, cpus, s.cpus);
    flag(o_affinity, affinity, s.affinity);
    for (const std::string& value : listen) s.listen.push_back({value, o_listen->get_name()});
    text(o_socket_mode, socket_mode, s.socket_mode);
    text(o_steer, steer, s.steer);
    flag(o_preload, preload, s.preload);
    flag(o_fd_store, fd_store, s.fd_store);
    text(o_fd_env, fd_env, s.fd_env);
    text(o_user, user, s.user);
    text(o_restart, restart, s.restart);
    text(o_success_exit, success_exit, s.success_exit);
    text(o_restart_prevent, restart_prevent, s.restart_prevent);
    text(o_restart_force, restart_force, s.restart_force);
    number(o_max_restarts, max_restarts, s.max_restarts);
    text(o_restart_window, restart_window, s.restart_window);
    text(o_backoff, backoff, s.backoff);
    text(o_min_uptime, min_uptime, s.min_uptime);
    text(o_on_threshold, on_threshold, s.on_threshold);
    text(o_stop_signal, stop_signal, s.stop_signal);
    text(o_stop_timeout, stop_timeout, s.stop_timeout);
    text(o_signal_scope, signal_scope, s.signal_scope);
    for (const std::string& value : rewrite_signal) s.rewrite_signal.push_back({value, o_rewrite_signal->get_name()});
    text(o_scale_up_after, scale_up_after, s.scale_up_after);
    text(o_scale_down_after, scale_down_after, s.scale_down_after);
    text(o_max_rss, max_rss, s.max_rss);
    text(o_max_lifetime, max_lifetime, s.max_lifetime);
    text(o_lifetime_jitter, lifetime_jitter, s.lifetime_jitter);
    text(o_watchdog, watchdog, s.watchdog);
    text(o_ready, ready, s.ready);
    text(o_ready_timeout, ready_timeout, s.ready_timeout);
    text(o_log_format, log_format, s.log_format);
    flag(o_timestamps, timestamps, s.timestamps);
    text(o_color, color, s.color);
    number(o_max_line, max_line, s.max_line);
    text(o_log_overflow, log_overflow, s.log_overflow);
    text(o_name, name, s.name);
    text(o_chdir, chdir, s.chdir);
    text(o_control, control, s.control);
    text(o_metrics, metrics, s.metrics);
    for (const std::string& value : env) s.env.push_back({value, o_env->get_name()});
    for (const std::string& value : env_file) s.env_file.push_back({value, o_env_file->get_name()});
    if (!command.empty()) s.command = config::Setting<std::vector<std::string>>{command, "command line"};
    s.print_plan = print_plan;
    s.verbosity = verbose - quiet;
    if (!config_file.empty()) s.config_file = config_file;
    return result;
}

}  // namespace

CommandLine parse_command_line(int argc, char** argv) { return parse(argc, argv, nullptr); }

std::string requested_log_format(const std::vector<std::string>& args) {
    constexpr std::string_view kOption = "--log-format";
    std::string format;
    for (std::size_t i = 0; i < args.size() && args[i] != "--"; ++i) {
        const std::string& arg = args[i];
        if (arg == kOption) {
            if (i + 1 < args.size() && args[i + 1] != "--") format = args[++i];
        } else if (arg.size() > kOption.size() && arg.starts_with(kOption) && arg[kOption.size()] == '=') {
            format = arg.substr(kOption.size() + 1);
        }
    }
    return format;
}

std::vector<OptionEntry> option_table() {
    std::vector<OptionEntry> table;
    parse(0, nullptr, &table);
    return table;
}

int run_completion(int argc, char** argv) {
    const auto shell = argc == 2 ? shell_from_name(argv[1]) : std::nullopt;
    if (!shell) {
        std::fprintf(stderr, "preforkctl: error: usage: preforkctl completion bash|zsh|fish\n");
        return to_int(ExitCode::usage);
    }
    std::fputs(completion_script(*shell, option_table()).c_str(), stdout);
    return 0;
}

}  // namespace preforkctl::app
