#include "supervise/supervisor.hpp"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "logrelay/output.hpp"
#include "plan/durations.hpp"
#include "spawn/launch.hpp"
#include "supervise/slot.hpp"
#include "sys/children.hpp"
#include "sys/signals.hpp"

namespace preforkctl::supervise {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

logrelay::Format to_output_format(plan::LogFormat format) {
    switch (format) {
        case plan::LogFormat::json: return logrelay::Format::json;
        case plan::LogFormat::raw: return logrelay::Format::raw;
        case plan::LogFormat::prefix:
        case plan::LogFormat::inherit: break;
    }
    return logrelay::Format::prefix;
}

bool use_color(const plan::LogSpec& log) {
    switch (log.color) {
        case plan::ColorMode::always: return true;
        case plan::ColorMode::never: return false;
        case plan::ColorMode::automatic: break;
    }
    const char* no_color = std::getenv("NO_COLOR");
    return (no_color == nullptr || *no_color == '\0') && ::isatty(STDOUT_FILENO) == 1;
}

// One of a slot's two output streams. The pipe belongs to the slot: it is created once and outlives
// every worker of the slot, so nothing written across a restart is lost.
struct StreamRelay {
    StreamRelay(asio::io_context& io, sys::Pipe pipe, std::size_t max_line)
        : write_end(std::move(pipe.write_end)), reader(io, pipe.read_end.release()), framer(max_line) {}

    sys::Fd write_end;                  // handed to each worker as fd 1 or 2
    asio::posix::stream_descriptor reader;
    logrelay::LineFramer framer;
    std::array<char, kReadChunk> buffer{};
};

struct SlotRuntime {
    SlotRuntime(asio::io_context& io, plan::SlotSpec slot_spec) : spec(std::move(slot_spec)), restart_timer(io) {}

    plan::SlotSpec spec;
    SlotState state;
    asio::steady_timer restart_timer;
    std::unique_ptr<StreamRelay> out;
    std::unique_ptr<StreamRelay> err;
    int output_pid = 0;  // pid that relayed lines are attributed to
};

class Supervisor {
public:
    Supervisor(const plan::Plan& plan, const net::ListenerSet& listeners)
        : plan_(plan),
          listeners_(listeners),
          signals_(io_),
          stop_timer_(io_),
          output_(logrelay::OutputOptions{to_output_format(plan.log.format), plan.log.name, plan.workers,
                                          plan.log.timestamps, use_color(plan.log)}) {
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
    void signal_strays(int signal);
    void finish_if_settled();
    void start_reading(SlotRuntime& slot, StreamRelay& relay, logrelay::Stream stream);
    void drain(SlotRuntime& slot);
    void relay_bytes(SlotRuntime& slot, StreamRelay& relay, logrelay::Stream stream, std::string_view bytes);
    void wait_for_signal();

    void guard_shared_sockets();

    const plan::Plan& plan_;
    const net::ListenerSet& listeners_;
    std::optional<spawn::Identity> identity_;
    asio::io_context io_;
    asio::signal_set signals_;
    asio::steady_timer stop_timer_;
    logrelay::Output output_;
    std::vector<std::unique_ptr<SlotRuntime>> slots_;
    bool stopping_ = false;
    bool killing_ = false;                 // the stop timeout passed, or a second stop signal came
    std::set<pid_t> strays_signalled_;     // non-worker children that got the stop signal
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
        auto slot = std::make_unique<SlotRuntime>(io_, spec);
        if (plan_.log.format != plan::LogFormat::inherit) {
            auto out_pipe = sys::make_pipe();
            auto err_pipe = sys::make_pipe();
            if (!out_pipe || !err_pipe) {
                spdlog::error("{}", (!out_pipe ? out_pipe : err_pipe).error().message);
                return to_int(ExitCode::internal);
            }
            (void)sys::set_nonblocking(out_pipe->read_end.get(), true);
            (void)sys::set_nonblocking(err_pipe->read_end.get(), true);
            slot->out = std::make_unique<StreamRelay>(io_, std::move(*out_pipe), plan_.log.max_line);
            slot->err = std::make_unique<StreamRelay>(io_, std::move(*err_pipe), plan_.log.max_line);
        }
        slots_.push_back(std::move(slot));
    }
    for (auto& slot : slots_) {
        if (slot->out) {
            start_reading(*slot, *slot->out, logrelay::Stream::out);
            start_reading(*slot, *slot->err, logrelay::Stream::err);
        }
    }
    // A stop signal may already be pending; it is handled before the first spawn if so.
    io_.poll();
    for (auto& slot : slots_) {
        if (stopping_) break;
        apply(*slot, event::Start{});
    }
    finish_if_settled();
    io_.run();
    output_.flush();
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
        drain(*owner);
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
    request.stdout_fd = slot.out ? slot.out->write_end.get() : STDOUT_FILENO;
    request.stderr_fd = slot.err ? slot.err->write_end.get() : STDERR_FILENO;
    request.cpu = slot.spec.cpu;
    request.chdir = plan_.chdir;
    const spawn::LaunchResult result = spawn::launch(request);
    if (!result.failure) {
        slot.output_pid = result.pid;
        apply(slot, event::Spawned{result.pid});
        return;
    }
    const spawn::LaunchError failure = *result.failure;
    const std::string why = spawn::describe_failure(failure, plan_.command.front());
    if (spawn::is_permanent(failure)) {
        // The command cannot run at all: a configuration error, reported once and never retried (§6).
        spdlog::error("{}", why);
        if (!exit_status_) {
            exit_status_ = to_int(failure.error == ENOENT ? ExitCode::not_found : ExitCode::not_executable);
        }
        slot.state.phase = Phase::done;
        begin_stop("the command cannot be executed");
        return;
    }
    // A start that failed for lack of resources is a failure like a crash: never exit 0 after it.
    if (!stopping_ && !first_worker_failure_) first_worker_failure_ = to_int(ExitCode::internal);
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
    signal_strays(plan_.stop.signal);
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
    killing_ = true;
    for (auto& slot : slots_) {
        apply(*slot, event::Kill{});
    }
    signal_strays(SIGKILL);
}

// Children that are not workers: orphans re-parented to preforkctl (PID 1 or subreaper), among them
// helpers that left their worker's session with setsid and so escaped its process group.
void Supervisor::signal_strays(int signal) {
    const auto children = sys::child_pids();
    if (!children) {
        // No /proc of our own: as PID 1, kill(-1) reaches every other process of the namespace.
        if (::getpid() == 1 && ::kill(-1, signal) == 0 && signal != SIGKILL) ::kill(-1, SIGCONT);
        return;
    }
    for (const pid_t pid : *children) {
        const bool worker = std::any_of(slots_.begin(), slots_.end(),
                                        [pid](const auto& slot) { return slot->state.pid == pid; });
        if (worker) continue;
        if (signal != SIGKILL && !strays_signalled_.insert(pid).second) continue;
        if (::kill(pid, signal) == 0) {
            if (signal != SIGKILL) ::kill(pid, SIGCONT);
            spdlog::debug("sent {} to stray process {}", plan::signal_name(signal), pid);
        }
    }
}

void Supervisor::finish_if_settled() {
    for (auto& slot : slots_) {
        if (!is_settled(slot->state)) return;
    }
    // Strays must not outlive preforkctl: as PID 1 the kernel would SIGKILL them without warning, as a
    // subreaper it would hand them to the host's init. They get the stop signal, SIGKILL after the timeout,
    // and preforkctl leaves once the last one is reaped (reap() calls back here).
    if (sys::has_children()) {
        if (!stopping_) {
            begin_stop("every worker has ended; stopping the processes they left behind");
        } else {
            signal_strays(killing_ ? SIGKILL : plan_.stop.signal);
        }
        return;
    }
    // Every slot is over: relay what is left and leave the loop.
    for (auto& slot : slots_) {
        drain(*slot);
    }
    output_.flush();
    stop_timer_.cancel();
    io_.stop();
}

void Supervisor::start_reading(SlotRuntime& slot, StreamRelay& relay, logrelay::Stream stream) {
    relay.reader.async_read_some(asio::buffer(relay.buffer),
                                 [this, &slot, &relay, stream](const boost::system::error_code& error, std::size_t n) {
                                     if (error) return;
                                     relay_bytes(slot, relay, stream, std::string_view(relay.buffer.data(), n));
                                     output_.flush();
                                     start_reading(slot, relay, stream);
                                 });
}

void Supervisor::relay_bytes(SlotRuntime& slot, StreamRelay& relay, logrelay::Stream stream,
                             std::string_view bytes) {
    relay.framer.feed(bytes, [&](const logrelay::Line& line) {
        output_.add(slot.spec.slot, slot.output_pid, stream, line);
    });
}

void Supervisor::drain(SlotRuntime& slot) {
    for (auto [relay, stream] : {std::pair{slot.out.get(), logrelay::Stream::out},
                                 std::pair{slot.err.get(), logrelay::Stream::err}}) {
        if (relay == nullptr) continue;
        for (;;) {
            std::array<char, kReadChunk> chunk;
            const ssize_t n = ::read(relay->reader.native_handle(), chunk.data(), chunk.size());
            if (n <= 0) break;
            relay_bytes(slot, *relay, stream, std::string_view(chunk.data(), static_cast<std::size_t>(n)));
        }
        // The dead worker's unterminated last line is its own: it must not merge with the next worker's.
        relay->framer.flush([&](const logrelay::Line& line) {
            output_.add(slot.spec.slot, slot.output_pid, stream, line);
        });
    }
    output_.flush();
}

}  // namespace

int supervise(const plan::Plan& plan, const net::ListenerSet& listeners) {
    Supervisor supervisor(plan, listeners);
    return supervisor.run();
}

}  // namespace preforkctl::supervise
