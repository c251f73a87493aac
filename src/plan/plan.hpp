#pragma once
// Plan: every decision preforkctl makes before starting anything, as plain values.

#include <array>
#include <bitset>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plan/cpus.hpp"
#include "plan/durations.hpp"
#include "plan/host_facts.hpp"
#include "plan/listen_address.hpp"

namespace preforkctl::plan {

enum class SocketMode { shared, reuseport, child };
enum class SteerMode { none, cpu };  // --steer: cpu picks the reuseport socket of the worker on the receiving CPU
enum class FdDialect { systemd, einhorn, server_starter };
enum class RestartWhen { always, on_failure, never };
enum class OnThreshold { exit, park };
enum class LogFormat { prefix, json, raw, inherit };
enum class ColorMode { automatic, always, never };
enum class LogOverflow { block, drop };

/// A set of ways a worker can end, as --success-exit, --restart-prevent and --restart-force list them:
/// exit codes 0..255 and deaths by signal, kept apart (143 is exit code 143, TERM is death by SIGTERM).
struct ExitMatch {
    std::bitset<256> codes;
    std::bitset<65> signals;

    /// True when a worker that exited with code `value` (or was killed by signal `value`) is in the set.
    [[nodiscard]] bool matches(bool signaled, int value) const {
        const auto index = static_cast<std::size_t>(value);
        if (value < 0) return false;
        if (signaled) return index < signals.size() && signals.test(index);
        return index < codes.size() && codes.test(index);
    }
    [[nodiscard]] bool empty() const { return codes.none() && signals.none(); }

    bool operator==(const ExitMatch&) const = default;
};

/// When and how often a slot's worker is restarted (§6).
struct RestartSpec {
    RestartWhen when = RestartWhen::always;
    ExitMatch success;  // --success-exit: counts as a success besides exit code 0
    ExitMatch prevent;  // --restart-prevent: never restarted, whatever --restart says
    ExitMatch force;    // --restart-force: restarted even with --restart on-failure or never
    int max_restarts = 10;
    Millis window{60'000};
    Millis backoff_min{100};
    Millis backoff_max{10'000};
    Millis min_uptime{2'000};
    OnThreshold on_threshold = OnThreshold::exit;

    bool operator==(const RestartSpec&) const = default;
};

/// How workers are stopped (§7).
struct StopSpec {
    int signal = 15;  // SIGTERM
    Millis timeout{10'000};

    bool operator==(const StopSpec&) const = default;
};

/// Where a forwarded signal goes (--signal-scope): each worker's process group, or the worker process only.
enum class SignalScope { group, worker };

/// How the forwarded signals (kForwardedSignals) are passed on to the workers (§7).
struct ForwardSpec {
    SignalScope scope = SignalScope::group;
    std::map<int, int> rewrites;  // --rewrite-signal FROM:TO; TO 0 = dropped

    bool operator==(const ForwardSpec&) const = default;
};

/// The signals preforkctl forwards to its workers: every catchable signal that it does not act on itself
/// (TERM, INT, HUP, TTIN, TTOU, TSTP, CONT, CHLD), that is not a fault or resource-limit signal about
/// preforkctl's own execution (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT, XCPU, XFSZ), and that is not SIGPIPE,
/// which preforkctl ignores for its own writes.
inline constexpr std::array<int, 11> kForwardedSignals{SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT,   SIGALRM, SIGPWR,
                                                       SIGURG,  SIGIO,   SIGVTALRM, SIGPROF, SIGSTKFLT};
bool is_forwarded_signal(int signal);

/// When a new worker counts as ready (§7): gates rolling restarts and systemd's READY=1.
enum class ReadyMode { none, notify, delay };
struct ReadySpec {
    ReadyMode mode = ReadyMode::none;
    Millis delay{0};         // ReadyMode::delay
    Millis timeout{60'000};  // ReadyMode::notify: no READY=1 by then is a failed start

    bool operator==(const ReadySpec&) const = default;
};

/// How worker output is merged (§8).
struct LogSpec {
    LogFormat format = LogFormat::prefix;
    bool timestamps = false;
    ColorMode color = ColorMode::automatic;
    std::size_t max_line = 16 * 1024;
    LogOverflow overflow = LogOverflow::block;  // when preforkctl's own stdout/stderr cannot keep up
    std::string name;  // NAME of "NAME.SLOT | "

    bool operator==(const LogSpec&) const = default;
};

/// One worker slot: its stable number, the CPUs its worker may run on and argv (placeholders {host}/{port}
/// still unexpanded until the listeners are bound; see expand_argv).
struct SlotSpec {
    int slot = 0;
    CpuList cpus;  // one CPU with --affinity, the --cpus set without it; empty: not confined
    std::vector<std::string> argv;

    bool operator==(const SlotSpec&) const = default;
};

/// Who the workers run as (--user), resolved before anything starts.
struct Credentials {
    std::string name;  // as written, for messages
    unsigned uid = 0;
    unsigned gid = 0;
    std::vector<unsigned> groups;
    bool in_passwd = false;  // the uid has a passwd entry (its groups are the supplementary ones)

    bool operator==(const Credentials&) const = default;
};

/// The control plane (§11): the control socket and the metrics endpoint.
struct ControlSpec {
    std::optional<std::string> socket;  // the control socket's path; none with --control none
    bool socket_required = true;        // false for the default path of an unnamed preforkctl: when a live
                                        // preforkctl holds it, this one runs without (with a warning)
    std::optional<ListenSpec> metrics;  // --metrics HOST:PORT

    bool operator==(const ControlSpec&) const = default;
};

/// Elastic workers (§12, -n MIN..MAX): the worker count follows the listeners' accept queues.
struct ElasticSpec {
    int min = 1;                          // 0: on demand (no worker until a connection waits)
    int max = 1;                          // above min
    Millis scale_up_after{1'000};         // --scale-up-after: a queue non-empty this long adds a worker
    Millis scale_down_after{30'000};      // --scale-down-after: every queue empty this long removes one

    bool operator==(const ElasticSpec&) const = default;
};

/// Recycling (§12): a worker is replaced (new one first, like a rolling restart step) when it grows too big
/// or grows too old.
struct RecycleSpec {
    std::optional<std::uint64_t> max_rss;  // --max-rss, bytes over the worker's process tree
    std::optional<Millis> max_lifetime;    // --max-lifetime
    Millis lifetime_jitter{0};             // --lifetime-jitter: each worker's lifetime is longer by 0..this

    bool operator==(const RecycleSpec&) const = default;
};

struct Plan {
    std::string executable;            // resolved path of the command
    std::vector<std::string> command;  // as written
    CpuBudget budget;
    int workers = 1;                   // workers at start (elastic: elastic->min, 0 on demand)
    std::string workers_source;        // "auto: <budget source>" or "--workers 4"
    std::optional<ElasticSpec> elastic;  // -n MIN..MAX
    bool affinity = false;
    bool cpus_restricted = false;      // --cpus given: every worker is confined to the budget's CPUs
    std::vector<ListenSpec> listeners;
    std::vector<std::string> listen_given;  // the --listen values as given (a reload compares them)
    SocketMode socket_mode = SocketMode::shared;
    SteerMode steer = SteerMode::none;
    std::optional<std::string> preload_library;  // --preload: libpreforkctl-preload.so, put in LD_PRELOAD
    bool adopted = false;                    // listeners come from systemd socket activation
    bool fd_store = false;                   // --fd-store: put the shared listeners in systemd's fd store
    bool stored_adopted = false;             // some --listen got its socket back from the fd store
    std::vector<InheritedSocket> stale_stored;  // stored sockets no --listen asks for: closed and forgotten
    std::vector<FdDialect> fd_env{FdDialect::systemd};
    int tcp_migrate_req = -1;
    std::optional<Credentials> user;
    std::vector<SlotSpec> slots;
    RestartSpec restart;
    StopSpec stop;
    ForwardSpec forward;
    ReadySpec ready;
    RecycleSpec recycle;
    std::optional<Millis> watchdog;    // --watchdog: a worker must send WATCHDOG=1 at least this often
    LogSpec log;
    ControlSpec control;
    std::optional<std::string> chdir;
    std::vector<std::string> environment;  // base environment of every worker (no LISTEN_*, no PREFORK_*)
    std::vector<std::string> env_added;    // the --env-file and --env entries, in order (part of `environment`)
    std::vector<std::string> env_files;    // the --env-file paths, as given, in order
    std::optional<std::string> notify_socket;  // preforkctl's own NOTIFY_SOCKET (run by systemd), never the workers'
    std::string notify_directory;  // where the workers' NOTIFY_SOCKET files go (--ready notify, --watchdog); else ""
    std::optional<std::uint64_t> worker_fd_limit;  // RLIMIT_NOFILE soft limit workers get back (preforkctl raised its own)
    std::uint64_t fd_limit = 0;                    // preforkctl's own RLIMIT_NOFILE soft limit after raising it
    std::uint64_t fds_needed = 0;                  // descriptors preforkctl needs for its workers (estimate)
    std::vector<std::string> warnings;             // settings that are accepted but do nothing; printed at start
    bool print_plan = false;
    int verbosity = 0;
};

/// The most workers preforkctl runs (--workers, ctl scale).
constexpr int kMaxWorkers = 4096;

/// The file descriptors preforkctl needs to run `workers` workers of `plan` (an estimate, on the safe side).
std::uint64_t estimate_descriptors(const Plan& plan, int workers);

/// Values that fill the placeholders of one worker's argv and environment.
struct SlotContext {
    int slot = 0;
    int workers = 1;
    std::string host;   // first listener's host, "" without listeners
    std::string port;   // first listener's real port
    std::string cpus;   // the worker's CPU list ("0-3"), "" when it is not confined
    std::vector<std::string> addresses;  // every listener's real address (HOST:PORT or a unix path), in fd order
    int generation = 0;                  // rolling restarts so far (PREFORK_GENERATION)
};

/// Slot `slot`'s spec: with --affinity its CPU in spread order (wrapping, the same whatever the worker count),
/// else the --cpus set when given; and argv.
/// Used for the planned slots and for slots added at run time (SIGTTIN).
SlotSpec make_slot_spec(const Plan& plan, int slot);

/// The placeholder values of `slot`, given each listener's real port (same order as plan.listeners).
SlotContext make_slot_context(const Plan& plan, const SlotSpec& slot, const std::vector<std::uint16_t>& ports);

/// Replaces {slot} {workers} {host} {port} {cpus} in each argument; other braces are left alone.
std::vector<std::string> expand_argv(const std::vector<std::string>& argv, const SlotContext& context);

/// PREFORKCTL_PRELOAD_LISTENERS for one worker: each listener's fd (or '-' in child mode), family, type and
/// address in the format the preload library parses (src/preload/listeners.hpp).
std::string preload_listeners(const Plan& plan, const SlotContext& context);

/// `ld_preload` (a user's LD_PRELOAD, kept) with `library` appended, unless it already names it.
std::string with_preload(const std::string& ld_preload, const std::string& library);

/// PREFORK_* and LISTEN_FDS/LISTEN_FDNAMES entries for one worker (LISTEN_PID is added at spawn), and with
/// --preload LD_PRELOAD and PREFORKCTL_PRELOAD_LISTENERS.
std::vector<std::string> slot_environment(const Plan& plan, const SlotContext& context);

}  // namespace preforkctl::plan
