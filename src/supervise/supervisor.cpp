#include "supervise/supervisor.hpp"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>

#include "metrics/exposition.hpp"
#include "plan/durations.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/children.hpp"

namespace preforkctl::supervise {

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

}  // namespace

Supervisor::Supervisor(const plan::Plan& plan, net::ListenerSet& listeners, int workdir_fd, Reread reread,
                       Invocation invocation, std::optional<upgrade::State> restored)
    : plan_(plan),
      reread_(std::move(reread)),
      invocation_(std::move(invocation)),
      restored_(std::move(restored)),
      listeners_(listeners),
      workdir_fd_(workdir_fd),
      signal_reader_(io_),
      stop_timer_(io_),
      relay_(io_, relay_options(plan)),
      socket_watch_(io_, listeners),
      elastic_timer_(io_),
      elastic_watch_(io_),
      rss_timer_(io_),
      launcher_(plan.listeners.size()) {
    set_identity();
}

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
    if (restored_) {
        // An upgrade: the previous image's workers run on; nothing is started, everything is taken over.
        restore_counters(*restored_);
        auto restored = restore_control_plane(*restored_);
        if (restored) restored = restore_slots(*restored_);
        if (!restored) {
            spdlog::error("upgrade: {}", restored.error().message);
            if (!exit_status_) exit_status_ = to_int(ExitCode::internal);
            begin_stop("the upgrade could not take over");
        } else {
            // Said from the first event of the loop: the time away ends there.
            asio::post(io_, [this, state = std::move(*restored_)] { announce_upgrade(state); });
        }
        restored_.reset();
        starting_up_ = false;
        reap();  // workers that died while no image was looking
        start_elastic();
        start_recycling();
        finish_if_settled();
        io_.run();
        return finish_run();
    }
    if (const auto children = sys::child_pids()) inherited_.insert(children->begin(), children->end());
    if (auto opened = open_control_plane(); !opened) {
        spdlog::error("{}", opened.error().message);
        relay_.finish();
        return to_int(opened.error().exit);
    }

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
    if (slots_.empty()) announce_ready_if_all_ready();  // on demand: ready with no worker yet
    start_elastic();
    start_recycling();
    finish_if_settled();
    io_.run();
    return finish_run();
}

int Supervisor::finish_run() {
    relay_.finish();
    // A `ctl stop` client learns that preforkctl is done when its connection closes: after the last line.
    control_.reset();
    metrics_.reset();
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

control::Handler Supervisor::control_handler() {
    return [this](const control::Request& request, const control::Peer& peer, control::Respond respond) {
        const Origin origin{"ctl " + std::string(control::command_name(request)) + " (pid " + std::to_string(peer.pid) +
                                ")",
                            false, peer.fd};
        handle(request, origin, respond);
    };
}

// The control socket and the metrics endpoint (§11), unless an upgrade handed them over already. The default socket of an unnamed preforkctl gives way
// when it cannot be had (another unnamed preforkctl of the same command holds it): a warning, not a failure.
Status Supervisor::open_control_plane() {
    if (plan_.control.socket && !control_) {
        auto server = control::ControlServer::open(io_, *plan_.control.socket, control_handler());
        if (server) {
            control_ = std::move(*server);
            spdlog::debug("control socket {}", control_->path());
        } else if (!plan_.control.socket_required) {
            // In use: another unnamed preforkctl of this command has it (--name tells them apart). Cannot be made: no
            // writable /run or /tmp, as in a scratch image (--control names a place, or none says so).
            spdlog::warn("running without a control socket ({}); give --name, or --control PATH or none",
                         server.error().message);
        } else {
            return server.error();
        }
    }
    if (plan_.control.metrics && !metrics_) {
        const metrics::MetricsAddress address{plan_.control.metrics->host, plan_.control.metrics->port};
        auto server = metrics::MetricsServer::open(io_, address, [this] { return metrics::render_metrics(snapshot()); });
        if (!server) return server.error();
        metrics_ = std::move(*server);
        spdlog::info("serving metrics at http://{}/metrics", metrics_->address());
    }
    return Ok{};
}

// A slot's pipes are opened once per slot number and kept for good (also when SIGTTOU removes the slot:
// a slot added again later writes into them again).
Result<std::unique_ptr<SlotRuntime>> Supervisor::make_slot(const plan::SlotSpec& spec) {
    if (auto opened = relay_.open_slot(spec.slot); !opened) return opened.error();
    return std::make_unique<SlotRuntime>(io_, spec);
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
                ++slot.restarts_total;
                ++slot.restarts_by_reason[slot.failure_reason.empty() ? "exit" : slot.failure_reason];
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
                    rolling_failed_slot_ = slot.spec.slot;
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


int supervise(const plan::Plan& plan, net::ListenerSet& listeners, int workdir_fd, Reread reread,
              Invocation invocation, std::optional<upgrade::State> restored) {
    std::set<pid_t> readers;
    int status = 0;
    {
        Supervisor supervisor(plan, listeners, workdir_fd, std::move(reread), std::move(invocation),
                              std::move(restored));
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
