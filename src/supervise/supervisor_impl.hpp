#pragma once
// The supervisor's insides, shared by the files it is split into — one per event source (signal_events,
// reaping, readiness, control requests) and one per thing it does (spawning, scaling, rolling_restart,
// stopping, status). The event loop is the only owner of this state: every file runs on its one thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "control/protocol.hpp"
#include "control/server.hpp"
#include "control/snapshot.hpp"
#include "logrelay/relay.hpp"
#include "metrics/http_server.hpp"
#include "net/listeners.hpp"
#include "plan/plan.hpp"
#include "plan/reload.hpp"
#include "spawn/launch.hpp"
#include "supervise/elastic_policy.hpp"
#include "supervise/slot.hpp"
#include "supervise/socket_watch.hpp"
#include "supervise/supervisor.hpp"
#include "sys/notify.hpp"
#include "sys/signals.hpp"

namespace preforkctl::supervise {

namespace asio = boost::asio;

struct SlotRuntime {
    SlotRuntime(asio::io_context& io, plan::SlotSpec slot_spec)
        : spec(std::move(slot_spec)),
          restart_timer(io),
          ready_timer(io),
          retire_timer(io),
          lifetime_timer(io),
          watchdog_timer(io) {}

    plan::SlotSpec spec;
    SlotState state;
    asio::steady_timer restart_timer;
    asio::steady_timer ready_timer;    // --ready delay, or the --ready-timeout of notify
    asio::steady_timer retire_timer;   // rolling restart: --stop-timeout of the previous worker
    asio::steady_timer lifetime_timer; // --max-lifetime of the current worker
    asio::steady_timer watchdog_timer; // --watchdog: the current worker's next WATCHDOG=1 is due
    Millis watchdog_interval{0};       // --watchdog, or what the worker asked for with WATCHDOG_USEC=
    std::unique_ptr<asio::posix::stream_descriptor> notify;  // --ready notify: the newest worker's NOTIFY_SOCKET
    sys::SocketFile notify_file;                             // ...and its file, removed with it
    bool removing = false;  // scaled down: the slot goes away once its worker has stopped

    // What `ctl status` and the metrics report about the slot.
    int generation = 0;                  // PREFORK_GENERATION of the current worker
    std::uint64_t restarts_total = 0;
    std::map<std::string, std::uint64_t> restarts_by_reason;
    std::string failure_reason;          // why the current worker went, for the restart that follows
    std::optional<TimePoint> last_exit_at;
};

/// ctl upgrade while the new binary's check-only run is under way (upgrading.cpp). The loop goes on
/// meanwhile; the check's output is read and its exit reaped like any other event.
struct PendingUpgrade {
    PendingUpgrade(asio::io_context& io, int check_pid, asio::posix::stream_descriptor check_output)
        : pid(check_pid), output(std::move(check_output)), timer(io) {}

    std::string binary;
    std::string origin_text;
    int client_fd = -1;
    control::Respond respond;
    std::int64_t began_ns = 0;
    int pid;
    asio::posix::stream_descriptor output;
    std::string said;               // what it printed (64 KiB at most)
    bool output_done = false;
    std::optional<int> status;      // its exit status once reaped; -1: killed
    bool timed_out = false;
    asio::steady_timer timer;       // kCheckTimeout
    std::vector<char> buffer = std::vector<char>(4096);
};

/// Who asked for a request: a signal (its name) or a control client.
struct Origin {
    std::string text;           // "SIGHUP", "ctl (pid 1234)"
    bool from_signal = false;
    int client_fd = -1;         // a control client's connection (an upgrade hands it to the next image)
};

class Supervisor {
public:
    Supervisor(const plan::Plan& plan, net::ListenerSet& listeners, int workdir_fd, Reread reread,
               Invocation invocation, std::optional<upgrade::State> restored);

    int run();
    /// The output readers (see output_readers_) that were still there when run() ended.
    [[nodiscard]] const std::set<pid_t>& output_readers() const { return output_readers_; }

private:
    // supervisor.cpp: start-up and the slot state machine's commands.
    Status open_control_plane();
    control::Handler control_handler();
    /// After the loop: the last output, and the exit status.
    int finish_run();
    void apply(SlotRuntime& slot, const Event& event);
    void execute(SlotRuntime& slot, const Command& command);
    Result<std::unique_ptr<SlotRuntime>> make_slot(const plan::SlotSpec& spec);
    // spawning.cpp
    void spawn(SlotRuntime& slot);
    // signal_events.cpp: the signalfd; TERM, HUP, TTIN and TTOU become requests.
    void read_signals();
    void handle_signal(const sys::SignalInfo& signal);
    void suspend_workers();
    void signal_workers(int signal, bool to_group = true);
    void forward_signal(int signal);
    // requests.cpp: the one path of signals and ctl commands.
    void handle(const control::Request& request, const Origin& origin, const control::Respond& respond);
    control::Reply scale(const control::request::Scale& request, const Origin& origin);
    // reloading.cpp: a reload re-reads the config file first.
    /// Refuses, or takes over what it can; `new_count` is set when a fixed worker count changed.
    std::optional<control::Reply> reread_configuration(const Origin& origin, std::optional<int>& new_count);
    void change_listeners(const plan::Plan& reread, const plan::ReloadPlan& reload, std::vector<net::Listener> added);
    void set_identity();
    std::optional<control::Reply> restart_slots(std::optional<int> slot, bool wait, const Origin& origin,
                                                const control::Respond& respond);
    void stop(const control::request::Stop& request, const Origin& origin,
              const std::function<void(const control::Reply&)>& answer);
    control::Reply signal_slots(const control::request::Signal& request, const Origin& origin);
    // upgrading.cpp: ctl upgrade hands everything to a new image of preforkctl, same pid (SPEC §14).
    /// Starts the new binary's check; the refusal when it cannot begin (the check's outcome answers later).
    std::optional<control::Reply> upgrade(const control::request::Upgrade& request, const Origin& origin,
                                          const control::Respond& respond);
    /// Why an upgrade cannot happen now, or "".
    [[nodiscard]] std::string upgrade_blocker() const;
    void read_check_output();
    /// Called when the check's output has ended and its exit was reaped (or it timed out).
    void check_finished();
    /// Hands everything over and execve()s; returns only when that failed.
    std::string execute_upgrade(PendingUpgrade& pending);
    [[nodiscard]] upgrade::State capture_state(const logrelay::RelayHandover& relay) const;
    // restoring.cpp: the new image takes over what the previous one handed over.
    Status restore_control_plane(const upgrade::State& state);
    Status restore_slots(const upgrade::State& state);
    void restore_counters(const upgrade::State& state);
    void announce_upgrade(const upgrade::State& state);
    // reaping.cpp: SIGCHLD, and the children that are not workers.
    void reap();
    void signal_strays(int signal);
    /// Sets output_readers_ to the inherited children among `children` that have preforkctl's output open.
    void find_output_readers(const std::vector<pid_t>& children);
    /// A child that is neither a worker nor an output reader (see output_readers_).
    [[nodiscard]] bool is_stray(pid_t pid) const;
    // readiness.cpp: --ready, and what systemd is told.
    void await_ready(SlotRuntime& slot, int pid);
    void arm_ready_timeout(SlotRuntime& slot, int pid, Millis timeout);
    /// Worker `pid` of `slot` counts as ready: the slot machine learns it, its watchdog starts.
    void worker_ready(SlotRuntime& slot, int pid);
    void read_notify(SlotRuntime& slot);
    void handle_notification(SlotRuntime& slot, int pid, const std::string& message);
    void notify_systemd(const std::string& message);
    void announce_ready_if_all_ready();
    // rolling_restart.cpp
    /// Begins a rolling restart of `slot` (none: every slot). While one is under way, one of every slot is
    /// queued after it, and a single slot joins it.
    void begin_rolling_restart(const Origin& origin, std::optional<int> slot, bool recycle = false);
    void next_rolling_step();
    void finish_rolling_restart(bool complete);
    // scaling.cpp
    /// `reason` is what the scale counters file it under: request (ctl, TTIN, TTOU), load, on_demand, idle.
    Status add_slot(const Origin& origin, const std::string& reason = "request");
    Status remove_slot(const Origin& origin, const std::string& reason = "request");
    void remove_finished_slots();
    [[nodiscard]] int live_slots() const;
    // elastic.cpp: -n MIN..MAX, from the listeners' accept queues.
    /// (Re)starts looking at the queues: at start, and when a request changed the count.
    void start_elastic();
    void look_at_queues(bool woken);
    void sample_after(Millis delay);
    void watch_queues();
    [[nodiscard]] std::vector<int> listening_fds() const;
    // recycling.cpp: --max-lifetime and --max-rss.
    void start_recycling();
    /// `elapsed`: how long the worker has run already (a worker handed over by an upgrade).
    void arm_lifetime(SlotRuntime& slot, int pid, Millis elapsed = Millis{0});
    void wait_for_lifetime(SlotRuntime& slot, int pid, Millis lifetime);
    void sample_rss();
    void recycle(SlotRuntime& slot, const std::string& reason, const std::string& why);
    // watchdog.cpp: --watchdog.
    void arm_watchdog(SlotRuntime& slot, int pid);
    void watchdog_expired(SlotRuntime& slot, int pid, bool triggered = false);
    // stopping.cpp
    void begin_stop(const std::string& why, std::optional<plan::Millis> timeout = std::nullopt);
    void kill_all();
    void finish_if_settled();
    // status.cpp
    [[nodiscard]] control::Snapshot snapshot() const;

    plan::Plan plan_;  // as planned at start; a reload takes over what can change live (reloading.cpp)
    Reread reread_;
    Invocation invocation_;
    std::optional<upgrade::State> restored_;  // handed over by the previous image; used up by run()
    std::unique_ptr<PendingUpgrade> upgrading_;  // ctl upgrade: the new binary's check is running
    std::vector<net::Listener> retiring_listeners_;  // removed by a reload: closed when its rolling restart ends
    net::ListenerSet& listeners_;
    int workdir_fd_;
    std::optional<spawn::Identity> identity_;
    asio::io_context io_;
    asio::posix::stream_descriptor signal_reader_;
    asio::steady_timer stop_timer_;
    logrelay::Relay relay_;  // slots' output pipes and preforkctl's stdout/stderr
    SocketWatch socket_watch_;  // re-arms a listening socket that a worker shut down
    sys::NotifyDirectory notify_directory_;  // before slots_: removed after their socket files
    std::vector<std::unique_ptr<SlotRuntime>> slots_;
    std::unique_ptr<control::ControlServer> control_;   // --control
    std::unique_ptr<metrics::MetricsServer> metrics_;   // --metrics
    TimePoint started_at_ = Clock::now();
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
    bool stop_requested_ = false;          // by SIGTERM/SIGINT or ctl stop
    bool starting_up_ = true;              // the planned slots' first starts are under way
    std::optional<int> exit_status_;       // set by the first fatal failure
    std::optional<int> first_worker_failure_;
    int generation_ = 0;                   // rolling restarts begun (PREFORK_GENERATION of new workers)
    std::deque<int> rolling_queue_;        // slots still to be replaced by the current rolling restart
    bool rolling_ = false;
    bool rolling_again_ = false;           // a reload came during a rolling restart: another one follows
    int rolling_failed_slot_ = -1;         // the slot whose new worker failed, ending the rolling restart
    std::vector<control::Respond> rolling_waiters_;  // ctl reload/restart clients waiting for the end
    bool announced_ready_ = false;         // systemd was told READY=1 for the start (or the last reload)
    // Counted for the status and the metrics.
    std::uint64_t rolling_replaced_ = 0;   // slots replaced by rolling restarts
    std::uint64_t scale_ups_ = 0;
    std::uint64_t scale_downs_ = 0;
    std::map<std::string, std::uint64_t> scaled_up_by_;    // reason -> slots added
    std::map<std::string, std::uint64_t> scaled_down_by_;  // reason -> slots removed
    std::map<std::string, std::uint64_t> recycles_;        // reason (rss, lifetime) -> workers recycled
    std::uint64_t watchdog_timeouts_ = 0;
    std::uint64_t upgrades_ = 0;
    bool rolling_recycle_ = false;         // the rolling restart under way was begun by a recycle
    // -n MIN..MAX
    ElasticState elastic_state_;
    asio::steady_timer elastic_timer_;             // the next sample of the accept queues
    asio::posix::stream_descriptor elastic_watch_; // readable once a connection waits (watch_readable)
    // --max-rss, --lifetime-jitter
    asio::steady_timer rss_timer_;
    // Made with the other start-up descriptors, before the slots' pipes: its staged descriptors stay low.
    spawn::Launcher launcher_;
    std::mt19937_64 jitter_random_{std::random_device{}()};
};

}  // namespace preforkctl::supervise
