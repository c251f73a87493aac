#include "supervise/supervisor.hpp"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <set>

#include "logrelay/relay.hpp"
#include "plan/durations.hpp"
#include "spawn/launch.hpp"
#include "supervise/forwarding.hpp"
#include "supervise/notify_senders.hpp"
#include "supervise/slot.hpp"
#include "supervise/socket_watch.hpp"
#include "sys/children.hpp"
#include "sys/notify.hpp"
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
    SlotRuntime(asio::io_context& io, plan::SlotSpec slot_spec)
        : spec(std::move(slot_spec)), restart_timer(io), ready_timer(io), retire_timer(io) {}

    plan::SlotSpec spec;
    SlotState state;
    asio::steady_timer restart_timer;
    asio::steady_timer ready_timer;    // --ready delay, or the --ready-timeout of notify
    asio::steady_timer retire_timer;   // rolling restart: --stop-timeout of the previous worker
    std::unique_ptr<asio::posix::stream_descriptor> notify;  // --ready notify: the newest worker's NOTIFY_SOCKET
    bool removing = false;  // SIGTTOU: the slot goes away once its worker has stopped
};

class Supervisor {
public:
    Supervisor(const plan::Plan& plan, net::ListenerSet& listeners, int workdir_fd)
        : plan_(plan),
          listeners_(listeners),
          workdir_fd_(workdir_fd),
          signal_reader_(io_),
          stop_timer_(io_),
          relay_(io_, relay_options(plan)),
          socket_watch_(io_, listeners) {
        if (plan.user) {
            identity_ = spawn::Identity{plan.user->uid, plan.user->gid, plan.user->groups};
        }
    }

    int run();
    /// The output readers (see output_readers_) that were still there when run() ended.
    [[nodiscard]] const std::set<pid_t>& output_readers() const { return output_readers_; }

private:
    void read_signals();
    void handle_signal(const sys::SignalInfo& signal);
    void reap();
    void apply(SlotRuntime& slot, const Event& event);
    void execute(SlotRuntime& slot, const Command& command);
    void spawn(SlotRuntime& slot);
    void await_ready(SlotRuntime& slot, int pid);
    void read_notify(SlotRuntime& slot);
    void begin_stop(const char* why);
    void kill_all();
    void signal_strays(int signal);
    /// Sets output_readers_ to the inherited children among `children` that have preforkctl's output open.
    void find_output_readers(const std::vector<pid_t>& children);
    /// A child that is neither a worker nor an output reader (see output_readers_).
    [[nodiscard]] bool is_stray(pid_t pid) const;
    void finish_if_settled();

    Result<std::unique_ptr<SlotRuntime>> make_slot(const plan::SlotSpec& spec);
    void add_slot();
    void remove_slot();
    void remove_finished_slots();
    [[nodiscard]] int live_slots() const;

    void begin_rolling_restart();
    void next_rolling_step();
    void suspend_workers();
    void signal_workers(int signal, bool to_group = true);
    void forward_signal(int signal);
    void notify_systemd(const std::string& message);
    void announce_ready_if_all_ready();

    const plan::Plan& plan_;
    net::ListenerSet& listeners_;
    int workdir_fd_;
    std::optional<spawn::Identity> identity_;
    asio::io_context io_;
    asio::posix::stream_descriptor signal_reader_;
    asio::steady_timer stop_timer_;
    logrelay::Relay relay_;  // slots' output pipes and preforkctl's stdout/stderr
    SocketWatch socket_watch_;  // re-arms a listening socket that a worker shut down
    std::vector<std::unique_ptr<SlotRuntime>> slots_;
    bool stopping_ = false;
    bool killing_ = false;                 // the stop timeout passed, or a second stop signal came
    std::set<pid_t> strays_signalled_;     // non-worker children that got the stop signal
    // Children preforkctl already had when it started (from the shell that exec'd it).
    std::set<pid_t> inherited_;
    // Those inherited children that have its stdout or stderr pipe open, such as the `tee` of a shell's
    // `exec > >(tee log)` before it exec'd preforkctl. They read preforkctl's own output, so they are neither
    // stopped nor waited for: they end when preforkctl's stdout/stderr close. (Other children it inherited, say
    // a shell's background job, are strays like any other.) Found when strays are looked for, not at start:
    // a background job may still hold the pipe then, between its fork and its own redirections.
    std::set<pid_t> output_readers_;
    bool stop_requested_ = false;          // by SIGTERM/SIGINT
    bool starting_up_ = true;              // the planned slots' first starts are under way
    std::optional<int> exit_status_;       // set by the first fatal failure
    std::optional<int> first_worker_failure_;
    int generation_ = 0;                   // rolling restarts begun (PREFORK_GENERATION of new workers)
    std::deque<int> rolling_queue_;        // slots still to be replaced by the current rolling restart
    bool rolling_ = false;
    bool rolling_again_ = false;           // a SIGHUP arrived during a rolling restart
    bool announced_ready_ = false;         // systemd was told READY=1 for the start (or the last reload)
};

int Supervisor::run() {
    // The handled signals stay blocked (app::run blocked them before anything else) and are read from a
    // signalfd: one that arrived during start-up is read now, not lost.
    auto signal_fd = sys::open_signal_fd();
    if (!signal_fd) {
        spdlog::error("{}", signal_fd.error().message);
        relay_.finish();
        return to_int(ExitCode::internal);
    }
    signal_reader_.assign(signal_fd->release());
    read_signals();
    socket_watch_.start();

    if (::getpid() != 1 && ::prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        spdlog::warn("cannot become a child subreaper: {}", std::strerror(errno));
    }
    if (const auto children = sys::child_pids()) inherited_.insert(children->begin(), children->end());

    for (const plan::SlotSpec& spec : plan_.slots) {
        auto slot = make_slot(spec);
        if (!slot) {
            spdlog::error("{}", slot.error().message);
            relay_.finish();
            return to_int(ExitCode::internal);
        }
        slots_.push_back(std::move(*slot));
    }
    // A stop signal may already be pending; it is handled before the first spawn if so.
    io_.poll();
    for (std::size_t i = 0; i < slots_.size() && !stopping_; ++i) {
        apply(*slots_[i], event::Start{});
    }
    starting_up_ = false;
    finish_if_settled();
    io_.run();
    relay_.finish();
    if (exit_status_) return *exit_status_;
    // A stop that was asked for is clean, whatever the workers died of before, unless a slot was parked at
    // the threshold when it came: a service that was not whole is never reported as fine (§7). When the
    // restart policy let every slot end by itself, the first failure is the result, and a slot parked at the
    // threshold (by workers that "succeeded" too quickly: no failure to report) is a failure too.
    const bool parked = std::any_of(slots_.begin(), slots_.end(),
                                    [](const auto& slot) { return slot->state.phase == Phase::parked; });
    if (stop_requested_) return parked ? to_int(ExitCode::threshold) : 0;
    if (first_worker_failure_) return *first_worker_failure_;
    return parked ? to_int(ExitCode::threshold) : 0;
}

// A slot's pipes are opened once per slot number and kept for good (also when SIGTTOU removes the slot:
// a slot added again later writes into them again).
Result<std::unique_ptr<SlotRuntime>> Supervisor::make_slot(const plan::SlotSpec& spec) {
    if (auto opened = relay_.open_slot(spec.slot); !opened) return opened.error();
    return std::make_unique<SlotRuntime>(io_, spec);
}

void Supervisor::read_signals() {
    signal_reader_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& error) {
        if (error) return;
        for (const sys::SignalInfo& signal : sys::read_signals(signal_reader_.native_handle())) {
            handle_signal(signal);
        }
        read_signals();
    });
}

void Supervisor::handle_signal(const sys::SignalInfo& signal) {
    switch (signal.signal) {
        case SIGCHLD:
            reap();
            break;
        case SIGTERM:
        case SIGINT:
            if (stopping_) {
                spdlog::warn("{} again: killing every worker now", plan::signal_name(signal.signal));
                kill_all();
            } else {
                stop_requested_ = true;
                begin_stop(signal.signal == SIGTERM ? "SIGTERM" : "SIGINT");
            }
            break;
        case SIGHUP:
            begin_rolling_restart();
            break;
        case SIGTTIN:
            add_slot();
            break;
        case SIGTTOU:
            // Only a SIGTTOU someone sent scales down; the terminal driver's own (SI_KERNEL) cannot even
            // arise while it is blocked, but a queued one must not remove a worker either.
            if (signal.code != SI_KERNEL) remove_slot();
            break;
        case SIGTSTP:
            suspend_workers();
            break;
        case SIGCONT:
            signal_workers(SIGCONT);
            break;
        default:
            // plan::kForwardedSignals (USR1, USR2, WINCH, QUIT, ...): forwarded to every worker (--signal-scope, --rewrite-signal).
            forward_signal(signal.signal);
            break;
    }
}

void Supervisor::forward_signal(int signal) {
    const std::optional<Forward> forward = forward_of(plan_.forward, signal);
    if (!forward) {
        spdlog::debug("{} dropped (--rewrite-signal)", plan::signal_name(signal));
        return;
    }
    signal_workers(forward->signal, forward->to_group);
    spdlog::debug("{} forwarded{} to every worker{}", plan::signal_name(signal),
                  forward->signal == signal ? "" : " as " + plan::signal_name(forward->signal),
                  forward->to_group ? "'s process group" : " process");
}

void Supervisor::signal_workers(int signal, bool to_group) {
    for (auto& slot : slots_) {
        for (const int pid : worker_pids(slot->state)) ::kill(to_group ? -pid : pid, signal);
    }
}

// Job control (^Z): the workers are in their own sessions, where the terminal's SIGTSTP never reaches
// them and would not stop an orphaned process group anyway, so they get SIGSTOP; then preforkctl stops
// itself so the shell sees the job stopped. `fg` sends SIGCONT, which is passed on.
void Supervisor::suspend_workers() {
    spdlog::info("SIGTSTP: stopping every worker (SIGCONT resumes them)");
    signal_workers(SIGSTOP);
    if (::getpid() != 1) ::kill(::getpid(), SIGSTOP);
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
            if (has_worker(slot->state, pid)) {
                owner = slot.get();
                break;
            }
        }
        if (owner == nullptr) {
            inherited_.erase(pid);  // its pid may be reused by a process that is a stray
            output_readers_.erase(pid);
            spdlog::debug("reaped orphan {} ({})", pid, exit.describe());
            continue;
        }
        // Whatever the worker wrote before dying is relayed before anything else is said about it.
        relay_.worker_exited(owner->spec.slot, pid);
        // What is left of the dead worker's process group (e.g. an nginx worker whose master died) would
        // run on beside the replacement: ask it to go, gracefully (--stop-signal), so it finishes what it serves.
        if (::kill(-pid, plan_.stop.signal) == 0) {
            ::kill(-pid, SIGCONT);
            spdlog::debug("slot {}: sent {} to what is left of worker {}'s process group", owner->spec.slot,
                          plan::signal_name(plan_.stop.signal), pid);
        }
        const bool current = owner->state.pid == pid;
        if (current && !is_success(plan_.restart, exit) && !stopping_ && !first_worker_failure_) {
            first_worker_failure_ = exit.as_status();
        }
        apply(*owner, event::Exited{pid, exit});
        socket_watch_.rearm_hung_up();
    }
    finish_if_settled();
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
            } else if constexpr (std::is_same_v<C, command::AwaitReady>) {
                await_ready(slot, c.pid);
            } else if constexpr (std::is_same_v<C, command::ArmRestart>) {
                slot.restart_timer.expires_after(c.delay);
                slot.restart_timer.async_wait([this, &slot](const boost::system::error_code& error) {
                    if (!error) apply(slot, event::RestartDue{});
                });
            } else if constexpr (std::is_same_v<C, command::CancelRestart>) {
                slot.restart_timer.cancel();
            } else if constexpr (std::is_same_v<C, command::SignalWorker>) {
                if (c.pid > 0) ::kill(-c.pid, c.signal);
            } else if constexpr (std::is_same_v<C, command::ArmRetireDeadline>) {
                slot.retire_timer.expires_after(plan_.stop.timeout);
                slot.retire_timer.async_wait([this, &slot, pid = c.pid](const boost::system::error_code& error) {
                    if (!error) apply(slot, event::RetireOverdue{pid});
                });
            } else if constexpr (std::is_same_v<C, command::ReplaceDone>) {
                if (!c.replaced) {
                    rolling_queue_.clear();
                    rolling_again_ = false;
                }
                next_rolling_step();
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
    plan::SlotContext context = plan::make_slot_context(plan_, slot.spec, listeners_.ports);
    context.workers = live_slots();
    context.generation = generation_;
    spawn::LaunchRequest request;
    request.executable = plan_.executable;
    request.argv = plan::expand_argv(slot.spec.argv, context);
    request.env = plan::slot_environment(plan_, context);
    if (plan_.ready.mode == plan::ReadyMode::notify) {
        // Each worker gets a socket of its own, so a READY=1 always names the worker it came from.
        auto notify = sys::bind_notify_socket();
        if (!notify) {
            apply(slot, event::SpawnFailed{notify.error().message});
            return;
        }
        slot.notify = std::make_unique<asio::posix::stream_descriptor>(io_, notify->fd.release());
        request.env.push_back("NOTIFY_SOCKET=" + notify->address);
    }
    request.listen_fds = listeners_.fds_for_slot(slot.spec.slot);
    request.identity = identity_;
    if (slot.state.replacing && slot.state.previous_pid != 0) {
        // A rolling restart: the new worker writes to pipes of its own, so that every line still names the
        // worker that wrote it while the two overlap.
        if (auto separated = relay_.separate_next_worker(slot.spec.slot); !separated) {
            spdlog::warn("slot {}: the new worker shares its output pipes with the old one: {}", slot.spec.slot,
                         separated.error().message);
        }
    }
    request.stdout_fd = relay_.worker_stdout(slot.spec.slot);
    request.stderr_fd = relay_.worker_stderr(slot.spec.slot);
    request.cpus = slot.spec.cpus;
    request.fd_limit = plan_.worker_fd_limit;
    request.workdir_fd = workdir_fd_;
    request.chdir = plan_.chdir;
    const spawn::LaunchResult result = spawn::launch(request);
    if (!result.failure) {
        relay_.worker_started(slot.spec.slot, result.pid);
        apply(slot, event::Spawned{result.pid});
        return;
    }
    const spawn::LaunchError failure = *result.failure;
    const std::string why = spawn::describe_failure(failure, plan_.command.front());
    const bool missing = failure.stage == spawn::LaunchStage::exec && failure.error == ENOENT;
    const int status = to_int(!spawn::is_permanent(failure) ? ExitCode::internal
                              : missing                      ? ExitCode::not_found
                                                             : ExitCode::not_executable);
    if (spawn::is_permanent(failure) && starting_up_) {
        // At start-up, a command that cannot run at all is a configuration error, reported once and never
        // retried (§6). Later (a deploy replaced the binary while a worker crashed, a rolling restart, a
        // slot added with SIGTTIN) it is a failed start under the restart policy: the healthy workers keep
        // serving, and the threshold still ends a slot that never comes back.
        spdlog::error("slot {}: {}", slot.spec.slot, why);
        if (!exit_status_) exit_status_ = status;
        slot.state.phase = Phase::done;
        begin_stop("a worker cannot be started");
        return;
    }
    // A start that failed is a failure like a crash: never exit 0 after it.
    if (!stopping_ && !first_worker_failure_) first_worker_failure_ = status;
    apply(slot, event::SpawnFailed{why});
}

void Supervisor::await_ready(SlotRuntime& slot, int pid) {
    switch (plan_.ready.mode) {
        case plan::ReadyMode::none:
            apply(slot, event::Ready{pid});
            announce_ready_if_all_ready();
            break;
        case plan::ReadyMode::delay:
            slot.ready_timer.expires_after(plan_.ready.delay);
            slot.ready_timer.async_wait([this, &slot, pid](const boost::system::error_code& error) {
                if (error) return;
                apply(slot, event::Ready{pid});
                announce_ready_if_all_ready();
            });
            break;
        case plan::ReadyMode::notify:
            slot.ready_timer.expires_after(plan_.ready.timeout);
            slot.ready_timer.async_wait([this, &slot, pid](const boost::system::error_code& error) {
                if (!error) apply(slot, event::ReadyTimeout{pid});
            });
            read_notify(slot);
            break;
    }
}

void Supervisor::read_notify(SlotRuntime& slot) {
    if (!slot.notify) return;
    asio::posix::stream_descriptor* socket = slot.notify.get();
    const int pid = slot.state.pid;
    socket->async_wait(asio::posix::stream_descriptor::wait_read,
                       [this, &slot, socket, pid](const boost::system::error_code& error) {
                           if (error || slot.notify.get() != socket) return;  // replaced by a newer worker's
                           const uid_t uid = identity_ ? static_cast<uid_t>(identity_->uid) : ::geteuid();
                           for (const std::string& message :
                                worker_notifications(socket->native_handle(), slot.spec.slot, pid, uid)) {
                               if (sys::notify_message_has(message, "READY=1")) {
                                   slot.ready_timer.cancel();
                                   apply(slot, event::Ready{pid});
                                   announce_ready_if_all_ready();
                               }
                           }
                           if (slot.notify.get() == socket) read_notify(slot);
                       });
}

void Supervisor::announce_ready_if_all_ready() {
    if (announced_ready_ || stopping_ || rolling_) return;
    for (const auto& slot : slots_) {
        if (slot->state.phase == Phase::running && !slot->state.ready) return;
        if (slot->state.phase == Phase::starting || slot->state.phase == Phase::idle) return;
    }
    announced_ready_ = true;
    const int serving = live_slots();
    spdlog::debug("all {} worker{} ready", serving, serving == 1 ? "" : "s");
    notify_systemd("READY=1\nSTATUS=" + std::to_string(serving) + " worker" + (serving == 1 ? "" : "s") + " ready");
}

void Supervisor::notify_systemd(const std::string& message) {
    if (!plan_.notify_socket) return;
    if (!sys::send_notify(*plan_.notify_socket, message)) {
        spdlog::debug("cannot notify systemd at {}: {}", *plan_.notify_socket, std::strerror(errno));
    }
}

// SIGHUP: replace every worker, one slot at a time; the old worker of a slot is stopped only once its
// replacement is ready, so the slot never stops serving (§7).
void Supervisor::begin_rolling_restart() {
    if (stopping_) return;
    if (rolling_) {
        spdlog::info("SIGHUP during a rolling restart: another one follows when this one is done");
        rolling_again_ = true;
        return;
    }
    ++generation_;
    rolling_ = true;
    announced_ready_ = false;
    for (const auto& slot : slots_) {
        if (!slot->removing) rolling_queue_.push_back(slot->spec.slot);
    }
    spdlog::info("SIGHUP: rolling restart of {} slot{} (generation {})", rolling_queue_.size(),
                 rolling_queue_.size() == 1 ? "" : "s", generation_);
    const auto now_usec = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
    notify_systemd("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(now_usec) + "\nSTATUS=rolling restart");
    next_rolling_step();
}

void Supervisor::next_rolling_step() {
    if (!rolling_) return;
    while (!rolling_queue_.empty() && !stopping_) {
        const int number = rolling_queue_.front();
        rolling_queue_.pop_front();
        for (auto& slot : slots_) {
            if (slot->spec.slot == number && !slot->removing) {
                spdlog::debug("rolling restart: slot {}", number);
                apply(*slot, event::Replace{});  // ReplaceDone calls back here
                return;
            }
        }
    }
    rolling_ = false;
    if (stopping_) return;
    spdlog::info("rolling restart done (generation {})", generation_);
    if (rolling_again_) {
        rolling_again_ = false;
        begin_rolling_restart();
        return;
    }
    announce_ready_if_all_ready();
}

int Supervisor::live_slots() const {
    int live = 0;
    for (const auto& slot : slots_) live += slot->removing ? 0 : 1;
    return live;
}

// SIGTTIN: one more slot, numbered after the highest, pinned like a planned slot of that number would be.
void Supervisor::add_slot() {
    if (stopping_) return;
    int number = 0;
    for (const auto& slot : slots_) number = std::max(number, slot->spec.slot + 1);
    if (plan_.socket_mode == plan::SocketMode::reuseport) {
        auto sockets = net::bind_reuseport_slot(plan_, listeners_.ports);
        if (!sockets) {
            spdlog::error("SIGTTIN: cannot add slot {}: {}", number, sockets.error().message);
            return;
        }
        if (listeners_.per_slot.size() <= static_cast<std::size_t>(number)) {
            listeners_.per_slot.resize(static_cast<std::size_t>(number) + 1);
        }
        listeners_.per_slot[static_cast<std::size_t>(number)] = std::move(*sockets);
        socket_watch_.watch_slot(number);
    }
    auto slot = make_slot(plan::make_slot_spec(plan_, number));
    if (!slot) {
        spdlog::error("SIGTTIN: cannot add slot {}: {}", number, slot.error().message);
        return;
    }
    slots_.push_back(std::move(*slot));
    spdlog::info("SIGTTIN: adding slot {} ({} workers)", number, live_slots());
    apply(*slots_.back(), event::Start{});
}

// SIGTTOU: the highest slot is stopped gracefully and then removed with its reuseport sockets (its output
// pipes stay with the slot number, see make_slot).
void Supervisor::remove_slot() {
    if (stopping_) return;
    if (live_slots() <= 1) {
        spdlog::warn("SIGTTOU: one worker is the minimum; not removing it");
        return;
    }
    SlotRuntime* highest = nullptr;
    for (auto& slot : slots_) {
        if (!slot->removing && (highest == nullptr || slot->spec.slot > highest->spec.slot)) highest = slot.get();
    }
    highest->removing = true;
    std::erase(rolling_queue_, highest->spec.slot);
    spdlog::info("SIGTTOU: removing slot {} ({} workers)", highest->spec.slot, live_slots());
    apply(*highest, event::Stop{});
    remove_finished_slots();
}

void Supervisor::remove_finished_slots() {
    if (stopping_) return;
    for (auto it = slots_.begin(); it != slots_.end();) {
        SlotRuntime& slot = **it;
        if (!slot.removing || !is_settled(slot.state)) {
            ++it;
            continue;
        }
        const auto number = static_cast<std::size_t>(slot.spec.slot);
        socket_watch_.unwatch_slot(slot.spec.slot);
        if (number < listeners_.per_slot.size()) listeners_.per_slot[number].clear();  // closes its sockets
        spdlog::debug("slot {} removed", slot.spec.slot);
        it = slots_.erase(it);
    }
}

void Supervisor::begin_stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    rolling_queue_.clear();
    rolling_ = false;
    notify_systemd("STOPPING=1\nSTATUS=stopping");
    spdlog::info("stopping every worker ({}): {} then SIGKILL after {}", why, plan::signal_name(plan_.stop.signal),
                 plan::format_duration(plan_.stop.timeout));
    for (auto& slot : slots_) {
        slot->ready_timer.cancel();
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
    finish_if_settled();  // without /proc, strays cannot be killed: see there
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
    find_output_readers(*children);
    for (const pid_t pid : *children) {
        if (!is_stray(pid)) continue;
        if (signal != SIGKILL && !strays_signalled_.insert(pid).second) continue;
        if (::kill(pid, signal) == 0) {
            if (signal != SIGKILL) ::kill(pid, SIGCONT);
            spdlog::debug("sent {} to stray process {}", plan::signal_name(signal), pid);
        }
    }
}

void Supervisor::find_output_readers(const std::vector<pid_t>& children) {
    std::vector<pid_t> candidates;
    for (const pid_t pid : children) {
        if (inherited_.contains(pid) && !strays_signalled_.contains(pid)) candidates.push_back(pid);
    }
    output_readers_.clear();
    for (const pid_t pid : sys::sharing_output_pipe(candidates)) output_readers_.insert(pid);
}

bool Supervisor::is_stray(pid_t pid) const {
    const bool worker =
        std::any_of(slots_.begin(), slots_.end(), [pid](const auto& slot) { return has_worker(slot->state, pid); });
    return !worker && !output_readers_.contains(pid);
}

void Supervisor::finish_if_settled() {
    remove_finished_slots();
    for (auto& slot : slots_) {
        if (!is_settled(slot->state)) return;
    }
    // Strays must not outlive preforkctl: as PID 1 the kernel would SIGKILL them without warning, as a
    // subreaper it would hand them to the host's init. They get the stop signal, SIGKILL after the timeout,
    // and preforkctl leaves once the last one is reaped (reap() calls back here).
    // Without /proc any child counts as a stray: there is no telling them apart.
    const auto children = sys::child_pids();
    if (children) find_output_readers(*children);
    const bool strays = children ? std::any_of(children->begin(), children->end(),
                                               [this](pid_t pid) { return is_stray(pid); })
                                 : sys::has_children();
    if (strays) {
        if (!stopping_) {
            begin_stop("every worker has ended; stopping the processes they left behind");
            return;
        }
        if (!killing_ || children || ::getpid() == 1) {
            signal_strays(killing_ ? SIGKILL : plan_.stop.signal);
            return;
        }
        // No /proc and not PID 1: the remaining children cannot be found, so they cannot be stopped either;
        // waiting for them could take forever. They were given the stop timeout to end by themselves.
        spdlog::warn("without /proc, preforkctl cannot find its remaining child processes (left behind by "
                     "workers, or inherited) to stop them: they keep running");
    }
    // Every slot is over: leave the loop (relay_.finish() then writes what is left).
    stop_timer_.cancel();
    io_.stop();
}

}  // namespace

int supervise(const plan::Plan& plan, net::ListenerSet& listeners, int workdir_fd) {
    std::set<pid_t> readers;
    int status = 0;
    {
        Supervisor supervisor(plan, listeners, workdir_fd);
        status = supervisor.run();
        readers = supervisor.output_readers();
    }  // the relay's descriptors of stdout and stderr are closed here
    // As PID 1, preforkctl's exit kills every process of the namespace: an inherited child that reads its
    // output (`exec > >(tee log)` before preforkctl) would lose what it has not read yet. It gets to the end
    // first, for up to --stop-timeout.
    if (::getpid() == 1 && !readers.empty()) sys::let_output_readers_finish(std::move(readers), plan.stop.timeout);
    return status;
}

}  // namespace preforkctl::supervise
