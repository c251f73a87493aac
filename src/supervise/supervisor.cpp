#include "supervise/supervisor.hpp"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>

#include "logrelay/relay.hpp"
#include "plan/durations.hpp"
#include "spawn/launch.hpp"
#include "supervise/slot.hpp"
#include "sys/signals.hpp"

namespace preforkctl::supervise {

namespace asio = boost::asio;

namespace {

logrelay::RelayOptions relay_options(const plan::Plan& plan) {
    logrelay::RelayOptions options;
    options.pipes = plan.log.format != plan::LogFormat::inherit;
    switch (plan.log.format) {
        case plan::LogFormat::json: options.format = logrelay::Format::json; break;
        case plan::LogFormat::raw: options.format = logrelay::Format::raw; break;
        case plan::LogFormat::prefix:
        case plan::LogFormat::inherit: options.format = logrelay::Format::prefix; break;
    }
    switch (plan.log.color) {
        case plan::ColorMode::automatic: options.color = logrelay::ColorChoice::automatic; break;
        case plan::ColorMode::always: options.color = logrelay::ColorChoice::always; break;
        case plan::ColorMode::never: options.color = logrelay::ColorChoice::never; break;
    }
    options.name = plan.log.name;
    options.slots = plan.workers;
    options.timestamps = plan.log.timestamps;
    options.max_line = plan.log.max_line;
    options.overflow = plan.log.overflow == plan::LogOverflow::drop ? logrelay::OverflowPolicy::drop
                                                                      : logrelay::OverflowPolicy::block;
    return options;
}

struct SlotRuntime {
    SlotRuntime(asio::io_context& io, plan::SlotSpec slot_spec) : spec(std::move(slot_spec)), restart_timer(io) {}

    plan::SlotSpec spec;
    SlotState state;
    asio::steady_timer restart_timer;
};

class Supervisor {
public:
    Supervisor(const plan::Plan& plan, const net::ListenerSet& listeners)
        : plan_(plan),
          listeners_(listeners),
          signals_(io_),
          stop_timer_(io_),
          relay_(io_, relay_options(plan)) {
        if (plan.user) {
            identity_ = spawn::Identity{plan.user->uid, plan.user->gid, plan.user->groups};
        }
    }

    int run();

private:
    void handle_signal(int signal);
    void reap();
    void apply(SlotRuntime& slot, const Event& event);
    void execute(SlotRuntime& slot, const Command& command);
    void spawn(SlotRuntime& slot);
    void begin_stop(const char* why);
    void kill_all();
    void finish_if_settled();
    void wait_for_signal();

    void guard_shared_sockets();

    const plan::Plan& plan_;
    const net::ListenerSet& listeners_;
    std::optional<spawn::Identity> identity_;
    asio::io_context io_;
    asio::signal_set signals_;
    asio::steady_timer stop_timer_;
    logrelay::Relay relay_;  // slots' output pipes and preforkctl's stdout/stderr
    std::vector<std::unique_ptr<SlotRuntime>> slots_;
    bool stopping_ = false;
    bool stop_requested_ = false;          // by SIGTERM/SIGINT
    std::optional<int> exit_status_;       // set by the first fatal failure
    std::optional<int> first_worker_failure_;
};

int Supervisor::run() {
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH}) {
        signals_.add(sig);
    }
    wait_for_signal();
    // The handlers are installed: signals that arrived during start-up are delivered now, not lost.
    sys::unblock_handled_signals();

    if (::getpid() != 1 && ::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        spdlog::warn("cannot become a child subreaper: {}", std::strerror(errno));
    }

    for (const plan::SlotSpec& spec : plan_.slots) {
        if (auto opened = relay_.open_slot(spec.slot); !opened) {
            spdlog::error("{}", opened.error().message);
            relay_.finish();
            return to_int(ExitCode::internal);
        }
        slots_.push_back(std::make_unique<SlotRuntime>(io_, spec));
    }
    // A stop signal may already be pending; it is handled before the first spawn if so.
    io_.poll();
    for (auto& slot : slots_) {
        if (stopping_) break;
        apply(*slot, event::Start{});
    }
    finish_if_settled();
    io_.run();
    relay_.finish();
    if (exit_status_) return *exit_status_;
    // A stop that was asked for is clean, whatever the workers died of before; when the restart policy
    // let every slot end by itself, the first failure is the result.
    return stop_requested_ ? 0 : first_worker_failure_.value_or(0);
}

void Supervisor::wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& error, int signal) {
        if (error) return;
        handle_signal(signal);
        wait_for_signal();
    });
}

void Supervisor::handle_signal(int signal) {
    switch (signal) {
        case SIGCHLD:
            reap();
            break;
        case SIGTERM:
        case SIGINT:
            if (stopping_) {
                spdlog::warn("{} again: killing every worker now", plan::signal_name(signal));
                kill_all();
            } else {
                stop_requested_ = true;
                begin_stop(signal == SIGTERM ? "SIGTERM" : "SIGINT");
            }
            break;
        default:
            // HUP, USR1, USR2, WINCH: forwarded to every worker's process group.
            for (auto& slot : slots_) {
                if (slot->state.pid > 0) {
                    ::kill(-slot->state.pid, signal);
                }
            }
            break;
    }
}

void Supervisor::reap() {
    for (;;) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        const ExitInfo exit = WIFSIGNALED(status) ? ExitInfo{true, WTERMSIG(status)}
                                                  : ExitInfo{false, WEXITSTATUS(status)};
        SlotRuntime* owner = nullptr;
        for (auto& slot : slots_) {
            if (slot->state.pid == pid) {
                owner = slot.get();
                break;
            }
        }
        if (owner == nullptr) {
            spdlog::debug("reaped orphan {} ({})", pid, exit.describe());
            continue;
        }
        // Whatever the worker wrote before dying is relayed before anything else is said about it.
        relay_.worker_exited(owner->spec.slot);
        // What is left of the dead worker's process group (e.g. an nginx worker whose master died) would
        // run on beside the replacement: ask it to go.
        if (::kill(-pid, SIGTERM) == 0) {
            ::kill(-pid, SIGCONT);
            spdlog::debug("slot {}: sent SIGTERM to what is left of worker {}'s process group", owner->spec.slot, pid);
        }
        if (!exit.success() && !stopping_ && !first_worker_failure_) {
            first_worker_failure_ = exit.as_status();
        }
        apply(*owner, event::Exited{exit});
        guard_shared_sockets();
    }
    finish_if_settled();
}

void Supervisor::guard_shared_sockets() {
    // A worker that calls shutdown() on the shared socket takes it out of LISTEN for every sibling;
    // listen() on preforkctl's own copy puts it back (research/servers.md, lesson 4).
    for (const net::Listener& listener : listeners_.shared) {
        if (net::rearm_if_shut_down(listener)) {
            spdlog::warn("a worker shut down the shared socket {}; listening on it again", listener.address());
        }
    }
}

void Supervisor::apply(SlotRuntime& slot, const Event& event) {
    Transition next = transition(slot.state, event, Clock::now(), plan_.restart, plan_.stop.signal);
    slot.state = std::move(next.state);
    for (const Command& command : next.commands) {
        execute(slot, command);
    }
}

void Supervisor::execute(SlotRuntime& slot, const Command& cmd) {
    std::visit(
        [&](const auto& c) {
            using C = std::decay_t<decltype(c)>;
            if constexpr (std::is_same_v<C, command::Spawn>) {
                spawn(slot);
            } else if constexpr (std::is_same_v<C, command::ArmRestart>) {
                slot.restart_timer.expires_after(c.delay);
                slot.restart_timer.async_wait([this, &slot](const boost::system::error_code& error) {
                    if (!error) apply(slot, event::RestartDue{});
                });
            } else if constexpr (std::is_same_v<C, command::CancelRestart>) {
                slot.restart_timer.cancel();
            } else if constexpr (std::is_same_v<C, command::SignalWorker>) {
                if (slot.state.pid > 0) {
                    ::kill(-slot.state.pid, c.signal);
                }
            } else if constexpr (std::is_same_v<C, command::Log>) {
                const std::string text = "slot " + std::to_string(slot.spec.slot) + ": " + c.text;
                switch (c.level) {
                    case command::Level::debug: spdlog::debug("{}", text); break;
                    case command::Level::info: spdlog::info("{}", text); break;
                    case command::Level::warning: spdlog::warn("{}", text); break;
                    case command::Level::error: spdlog::error("{}", text); break;
                }
            } else {
                static_assert(std::is_same_v<C, command::ThresholdExceeded>);
                if (!exit_status_) exit_status_ = to_int(ExitCode::threshold);
                begin_stop("restart threshold exceeded");
            }
        },
        cmd);
}

void Supervisor::spawn(SlotRuntime& slot) {
    const plan::SlotContext context = plan::make_slot_context(plan_, slot.spec, listeners_.ports);
    spawn::LaunchRequest request;
    request.executable = plan_.executable;
    request.argv = plan::expand_argv(slot.spec.argv, context);
    request.env = plan::slot_environment(plan_, context);
    request.listen_fds = listeners_.fds_for_slot(slot.spec.slot);
    request.identity = identity_;
    request.stdout_fd = relay_.worker_stdout(slot.spec.slot);
    request.stderr_fd = relay_.worker_stderr(slot.spec.slot);
    request.cpu = slot.spec.cpu;
    request.chdir = plan_.chdir;
    const spawn::LaunchResult result = spawn::launch(request);
    if (!result.failure) {
        relay_.worker_started(slot.spec.slot, result.pid);
        apply(slot, event::Spawned{result.pid});
        return;
    }
    const spawn::LaunchError failure = *result.failure;
    const std::string why = spawn::describe_failure(failure, plan_.command.front());
    if (failure.stage == spawn::LaunchStage::exec) {
        // The command cannot run at all: a configuration error, reported once and never retried (§6).
        spdlog::error("{}", why);
        if (!exit_status_) {
            exit_status_ = to_int(failure.error == ENOENT ? ExitCode::not_found : ExitCode::not_executable);
        }
        slot.state.phase = Phase::done;
        begin_stop("the command cannot be executed");
        return;
    }
    apply(slot, event::SpawnFailed{"slot " + std::to_string(slot.spec.slot) + ": " + why});
}

void Supervisor::begin_stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    spdlog::info("stopping every worker ({}): {} then SIGKILL after {}", why, plan::signal_name(plan_.stop.signal),
                 plan::format_duration(plan_.stop.timeout));
    for (auto& slot : slots_) {
        apply(*slot, event::Stop{});
    }
    stop_timer_.expires_after(plan_.stop.timeout);
    stop_timer_.async_wait([this](const boost::system::error_code& error) {
        if (error) return;
        spdlog::warn("stop timeout of {} passed: killing the remaining workers",
                     plan::format_duration(plan_.stop.timeout));
        kill_all();
    });
    finish_if_settled();
}

void Supervisor::kill_all() {
    for (auto& slot : slots_) {
        apply(*slot, event::Kill{});
    }
}

void Supervisor::finish_if_settled() {
    for (auto& slot : slots_) {
        if (!is_settled(slot->state)) return;
    }
    // Every slot is over: leave the loop (relay_.finish() then writes what is left).
    stop_timer_.cancel();
    io_.stop();
}

}  // namespace

int supervise(const plan::Plan& plan, const net::ListenerSet& listeners) {
    Supervisor supervisor(plan, listeners);
    return supervisor.run();
}

}  // namespace preforkctl::supervise
