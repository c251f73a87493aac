#pragma once
// Snapshot: what a running preforkctl is doing, as one value. The supervisor builds it when asked (`ctl
// status`, a metrics scrape); the status table, the JSON answer and the Prometheus text are all made from it.
// Plain data, no syscalls.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace preforkctl::control {

/// How a worker last ended.
struct LastExit {
    bool signaled = false;
    int value = 0;              // exit code, or signal number when signaled
    std::string text;           // "exit 3", "SIGKILL"
    double seconds_ago = 0;     // how long before the snapshot
};

/// Memory and CPU of a worker's process tree (the worker and every descendant), read from /proc.
struct TreeUsage {
    std::uint64_t rss_bytes = 0;
    double cpu_seconds = 0;     // user + system of the tree's processes, and of the children they reaped
    int processes = 0;
};

/// One slot, as `ctl status` shows it.
struct SlotStatus {
    int slot = 0;
    int pid = 0;                // the current worker; 0 when none runs
    std::string cpus;           // the CPUs it is confined to ("2", "0-3"); empty: not pinned
    std::string state;          // starting, ready, draining, backoff, parked, stopping, stopped
    bool ready = false;
    double uptime_seconds = 0;  // of the current worker; 0 when none runs
    int restarts_in_window = 0; // inside --restart-window
    std::uint64_t restarts_total = 0;
    std::map<std::string, std::uint64_t> restarts_by_reason;  // reason -> count (see restart_reason())
    std::optional<LastExit> last_exit;
    std::optional<TreeUsage> usage;  // absent when the worker's /proc entries cannot be read
    double cpu_percent = 0;     // CPU seconds of the tree / uptime, as ps(1) computes %CPU
    int generation = 0;         // PREFORK_GENERATION of the current worker
    std::vector<int> draining;  // replaced workers still finishing what they serve
};

/// One listening socket (per slot with --socket-mode reuseport).
struct ListenerStatus {
    std::string name;
    std::string address;        // "0.0.0.0:8080", "unix:/run/app.sock"
    std::string mode;           // shared, reuseport, child
    int slot = -1;              // reuseport: the slot that owns this socket; -1: shared by all
    std::optional<std::uint32_t> queue;    // connections waiting in the accept queue (TCP_INFO tcpi_unacked)
    std::optional<std::uint32_t> backlog;  // its limit (TCP_INFO tcpi_sacked)
};

/// Output relayed for one stream (stdout or stderr of the workers together).
struct StreamCounters {
    std::uint64_t lines = 0;
    std::uint64_t bytes = 0;
    std::uint64_t dropped_lines = 0;  // --log-overflow drop
};

/// -n MIN..MAX: the bounds of the elastic worker count.
struct ElasticStatus {
    int min = 0;
    int max = 0;
};

struct Snapshot {
    std::string name;           // --name
    std::string version;        // preforkctl's
    int pid = 0;                // preforkctl's
    double uptime_seconds = 0;
    std::string command;        // the worker command, as one line
    int workers = 0;            // slots wanted now (planned, then scaled)
    int generation = 0;         // rolling restarts begun
    bool rolling = false;       // a rolling restart is under way
    bool stopping = false;
    std::vector<SlotStatus> slots;
    std::vector<ListenerStatus> listeners;
    StreamCounters out;         // workers' stdout
    StreamCounters err;         // workers' stderr
    std::uint64_t rolling_restarts = 0;   // slots replaced by rolling restarts (HUP, ctl reload/restart)
    std::uint64_t scale_ups = 0;          // slots added (TTIN, ctl scale, elastic)
    std::uint64_t scale_downs = 0;        // slots removed (TTOU, ctl scale, elastic)
    // Why: request (ctl scale, TTIN, TTOU), load and on_demand (up), idle (down).
    std::map<std::string, std::uint64_t> scale_up_reasons;
    std::map<std::string, std::uint64_t> scale_down_reasons;
    std::optional<ElasticStatus> elastic;  // absent for a fixed worker count
    std::map<std::string, std::uint64_t> recycles;  // workers recycled, by reason: rss, lifetime
    std::uint64_t watchdog_timeouts = 0;  // workers that missed their WATCHDOG=1 or sent WATCHDOG=trigger
    std::uint64_t upgrades = 0;           // in-place upgrades (ctl upgrade) since the start
};

}  // namespace preforkctl::control
