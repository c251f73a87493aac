#pragma once
// The state one preforkctl image hands to the next in an in-place upgrade (SPEC §14, `ctl upgrade`): what
// the supervisor knows and holds, with every descriptor by number (they stay open across execve). Encoded
// as one JSON document with a format version; a version this image does not know is refused, never
// guessed at. Pure: the supervisor gathers the state and takes it over, sys/ writes it to a memfd.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.hpp"

namespace preforkctl::upgrade {

/// The format this image writes and the only one it reads.
inline constexpr int kStateVersion = 1;

/// What `preforkctl --upgrade-check=FD` prints when it can take over the state in FD: the running image
/// executes the new one only after it has seen this line (and exit status 0).
inline constexpr std::string_view kCheckAccepted = "preforkctl upgrade check: state accepted";

/// A listening socket preforkctl holds: shared by every slot (slot -1) or one slot's reuseport socket.
struct ListenerState {
    int fd = -1;
    int slot = -1;
    std::string name;
    std::string address;  // as logged, with the real port
    std::uint16_t port = 0;

    bool operator==(const ListenerState&) const = default;
};

/// The read end of one of a worker's output pipes, and the bytes of the line it has not finished yet.
struct PipeState {
    int fd = -1;            // the read end
    int write_fd = -1;      // the end each worker of the slot gets as fd 1 or 2
    std::string partial;
    bool continuing = false;  // the partial line continues one that was already shown in part

    bool operator==(const PipeState&) const = default;
};

/// How the last worker of a slot ended.
struct ExitState {
    bool signaled = false;
    int value = 0;
    std::int64_t ms_ago = 0;

    bool operator==(const ExitState&) const = default;
};

/// One slot: its worker, its history (times as milliseconds before the state was taken, since the two
/// images share no clock object), and what it is attached to.
struct SlotState {
    int slot = 0;
    std::string phase;                 // the slot machine's phase, by name
    int pid = 0;                       // current worker, 0 when none
    int previous_pid = 0;              // a rolling restart's old worker, still serving
    std::vector<int> draining;         // replaced workers told to stop
    bool ready = false;
    std::int64_t started_ms_ago = 0;
    std::vector<int> cpus;
    int generation = 0;
    std::uint64_t restarts_total = 0;
    std::map<std::string, std::uint64_t> restarts_by_reason;
    std::vector<std::int64_t> restarts_ms_ago;  // restarts inside the --restart-window
    std::int64_t next_delay_ms = 0;             // the backoff step the next restart waits
    std::int64_t restart_in_ms = -1;            // waiting to restart: when the restart is due; -1: none
    std::string failure_reason;                 // why the current worker went, for the restart that follows
    std::int64_t watchdog_interval_ms = 0;      // --watchdog, or what the worker asked for (WATCHDOG_USEC)
    std::optional<ExitState> last_exit;
    PipeState out;
    PipeState err;
    int notify_fd = -1;                         // the worker's NOTIFY_SOCKET (--ready notify, --watchdog)

    bool operator==(const SlotState&) const = default;
};

struct State {
    int version = kStateVersion;
    std::string from_version;              // the version of preforkctl that wrote it
    std::string binary;                    // the executable it runs from (the default of the next upgrade)
    std::int64_t taken_at_ns = 0;          // CLOCK_MONOTONIC when the upgrade request was taken up: the loop is
                                           // away from then until the next image's first event
    int client_fd = -1;                    // the `ctl upgrade` connection, answered by the next image
    std::uint64_t fd_soft_limit = 0;       // RLIMIT_NOFILE's soft limit when preforkctl started (workers get it)
    int workdir_fd = -1;                   // the directory it was started in (argv travels as execve's own)
    std::int64_t uptime_ms = 0;
    std::vector<ListenerState> listeners;
    std::vector<SlotState> slots;
    int control_fd = -1;                   // the control socket, listening
    std::string control_path;
    int metrics_fd = -1;                   // the --metrics socket, listening
    std::string queued_stdout;             // relayed output not yet written to preforkctl's stdout
    std::string queued_stderr;
    int generation = 0;                    // rolling restarts begun
    std::map<std::string, std::uint64_t> counters;  // rolling_restarts, scale_ups, recycles, ...
    std::vector<int> inherited;            // children preforkctl had when it started
    std::vector<int> output_readers;       // of those, the ones reading preforkctl's output
    bool announced_ready = false;          // systemd was told READY=1
    int first_worker_failure = -1;         // the exit status a failure set, -1: none

    bool operator==(const State&) const = default;
};

/// The state as one JSON document.
std::string encode(const State& state);

/// Reads what encode() wrote. Anything else — not JSON, a field missing or of the wrong type, a version
/// other than kStateVersion — is an error that says what was wrong; nothing is guessed.
Result<State> decode(std::string_view text);

/// Every descriptor the state names, once each, in increasing order: the ones to keep across execve.
std::vector<int> descriptors(const State& state);

}  // namespace preforkctl::upgrade
