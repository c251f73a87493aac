#include "app/run.hpp"

#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string_view>

#include "app/cli.hpp"
#include "app/fd_store.hpp"
#include "app/handover.hpp"
#include "config/toml_settings.hpp"
#include "logrelay/own_messages.hpp"
#include "net/listeners.hpp"
#include "plan/make_plan.hpp"
#include "supervise/supervisor.hpp"
#include "sys/fd.hpp"
#include "sys/host.hpp"
#include "sys/reexec.hpp"
#include "sys/signals.hpp"

namespace preforkctl::app {

namespace {

// preforkctl's own messages go to stderr as "preforkctl: LEVEL: text", unlike worker lines ("NAME.SLOT | ").
void set_up_logging() {
    auto logger = spdlog::stderr_logger_st("preforkctl");
    logger->set_formatter(logrelay::own_message_formatter(logrelay::OwnFormat::text));
    spdlog::set_default_logger(logger);
}

}  // namespace

namespace {

void use_log_format(std::string_view format) {
    if (format == "json") {
        spdlog::default_logger()->set_formatter(logrelay::own_message_formatter(logrelay::OwnFormat::json));
    }
}

}  // namespace

// With --log-format json they are JSON lines from the moment the settings are known (the relay, which
// takes over while workers run, writes them the same way), so that a log collector reads one format.
void set_log_format(const config::Settings& settings) {
    if (settings.log_format) use_log_format(settings.log_format->value);
}

void set_verbosity(int verbosity) {
    spdlog::set_level(verbosity > 0 ? spdlog::level::debug
                                    : verbosity < 0 ? spdlog::level::warn : spdlog::level::info);
}

namespace {

int fail(const Error& error) {
    spdlog::error("{}", error.message);
    return to_int(error.exit);
}

}  // namespace

Result<config::Settings> load_settings(int argc, char** argv, std::optional<int>& exit_now) {
    CommandLine command_line = parse_command_line(argc, argv);
    if (command_line.exit_now) {
        exit_now = command_line.exit_now;
        return config::Settings{};
    }
    if (!command_line.settings.config_file) {
        return std::move(command_line.settings);
    }
    auto from_file = config::load_toml_settings(*command_line.settings.config_file);
    if (!from_file) {
        return from_file.error();
    }
    return config::merge(std::move(*from_file), command_line.settings);
}

namespace {

void log_listeners(const plan::Plan& plan, const net::ListenerSet& listeners) {
    for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
        const plan::ListenSpec& spec = plan.listeners[i];
        const std::string address = plan::format_address(spec, listeners.ports[i]);
        switch (plan.socket_mode) {
            case plan::SocketMode::shared:
                spdlog::info("listening on {} (fd {} in workers, name {}{})", address, 3 + i, spec.name,
                             plan.adopted ? ", adopted from systemd"
                             : spec.kind == plan::ListenSpec::Kind::inherited ? ", taken back from systemd's fd store"
                                                                              : "");
                break;
            case plan::SocketMode::reuseport:
                spdlog::info("listening on {} (fd {} in workers, name {}, one SO_REUSEPORT socket per slot)",
                             address, 3 + i, spec.name);
                break;
            case plan::SocketMode::child:
                spdlog::info("workers bind {} themselves (PREFORK_REUSEPORT=1, HOST, PORT)", address);
                break;
        }
    }
    if (plan.steer == plan::SteerMode::cpu) {
        spdlog::info("--steer cpu: each connection goes to the slot pinned to the CPU that received it");
    }
    if (plan.socket_mode == plan::SocketMode::reuseport && plan.tcp_migrate_req == 0) {
        spdlog::info("net.ipv4.tcp_migrate_req is 0: a restarting slot keeps its socket, so its queued "
                     "connections wait; a removed slot's queue would be reset");
    }
}

// The settings and plan a reload re-reads: nullopt without a config file or an env file (nothing could have
// changed), as at start otherwise.
Result<std::optional<plan::Plan>> reread_plan(int argc, char** argv, plan::FdLimits fd_limits) {
    std::optional<int> exit_now;
    auto settings = load_settings(argc, argv, exit_now);
    if (!settings) return settings.error();
    if (!settings->config_file && settings->env_file.empty()) return std::optional<plan::Plan>();
    auto plan = plan::make_plan(*settings, sys::gather_host_facts(*settings, fd_limits));
    if (!plan) return plan.error();
    return std::optional<plan::Plan>(std::move(*plan));
}

}  // namespace

// A reload's re-read (SPEC §14), in the directory preforkctl was started in: relative paths in the file mean
// what they meant at start.
supervise::Reread reread_from(int argc, char** argv, plan::FdLimits fd_limits, int workdir) {
    return [argc, argv, fd_limits, workdir]() -> Result<std::optional<plan::Plan>> {
        if (workdir >= 0 && ::fchdir(workdir) != 0) return Error{"cannot enter the directory preforkctl started in"};
        auto reread = reread_plan(argc, argv, fd_limits);
        if (workdir >= 0 && ::chdir("/") != 0) {
            // still in the start directory: harmless, workers start there anyway
        }
        return reread;
    };
}

supervise::Invocation invocation_of(int argc, char** argv, plan::FdLimits fd_limits) {
    supervise::Invocation invocation;
    invocation.args.assign(argv + 1, argv + argc);
    invocation.executable = sys::own_executable();
    invocation.fd_soft_limit = fd_limits.soft;
    return invocation;
}

int run(int argc, char** argv) {
    // `ctl upgrade` runs the new image with a hidden first argument naming the state: taken off here.
    const HandoverArgument handover = take_handover_argument(argc, argv);
    // A stop signal during start-up stays pending until the event loop handles it (§7).
    sys::block_handled_signals();
    std::signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill the supervisor
    sys::ensure_standard_fds_open();
    const plan::FdLimits fd_limits = sys::raise_fd_limit();
    set_up_logging();
    use_log_format(requested_log_format(std::vector<std::string>(argv + 1, argv + argc)));
    if (handover.mode != HandoverMode::none) return take_over(handover, argc, argv, fd_limits);
    try {
        std::optional<int> exit_now;
        auto settings = load_settings(argc, argv, exit_now);
        if (exit_now) return *exit_now;
        if (!settings) return fail(settings.error());
        set_verbosity(settings->verbosity);
        set_log_format(*settings);

        const plan::HostFacts facts = sys::gather_host_facts(*settings, fd_limits);
        auto plan = plan::make_plan(*settings, facts);
        if (!plan) return fail(plan.error());
        for (const std::string& warning : plan->warnings) spdlog::warn("{}", warning);
        if (plan->print_plan) {
            std::fputs(plan::describe_plan(*plan).c_str(), stdout);
            return 0;
        }

        auto listeners = net::acquire_listeners(*plan);
        if (!listeners) return fail(listeners.error());
        log_listeners(*plan, *listeners);
        keep_listeners_in_fd_store(*plan, *listeners);
        spdlog::info("starting {} worker{} of {} ({})", plan->workers, plan->workers == 1 ? "" : "s",
                     plan->command.front(), plan->workers_source);
        // Everything given by a relative path (config file, unix sockets, the command) is resolved by now.
        const sys::Fd workdir = sys::leave_working_directory();
        return supervise::supervise(*plan, *listeners, workdir.get(), reread_from(argc, argv, fd_limits, workdir.get()),
                                    invocation_of(argc, argv, fd_limits));
    } catch (const std::exception& error) {
        spdlog::error("unexpected failure: {}", error.what());
        return to_int(ExitCode::internal);
    }
}

}  // namespace preforkctl::app
