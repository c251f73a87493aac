#pragma once
// Relay: the output side of the event loop. Owns every slot's stdout/stderr pipes (created once, kept
// across restarts), reads them, frames and formats lines, and writes them to preforkctl's stdout/stderr
// without ever blocking the loop. preforkctl's own messages (spdlog) go through it too, to stderr, each
// appended whole to the same queue as worker stderr lines (see own_messages.hpp for how they look).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <memory>
#include <string_view>

#include "logrelay/output.hpp"
#include "logrelay/overflow.hpp"
#include "sys/result.hpp"

namespace boost::asio {
class io_context;
}

namespace preforkctl::logrelay {

struct RelayOptions {
    bool pipes = true;             // false: --log-format inherit, workers write to our stdout/stderr
    Format format = Format::prefix;
    std::string name;
    int slots = 1;
    bool timestamps = false;
    ColorChoice color = ColorChoice::automatic;
    std::size_t max_line = 16 * 1024;
    OverflowPolicy overflow = OverflowPolicy::block;
    /// An unterminated line waits this long for its newline before it is shown (and continued later).
    std::chrono::milliseconds partial_line_timeout{500};
    /// At exit, writing the rest of the output gives up after this long without progress.
    std::chrono::milliseconds exit_stall_limit{1000};
};

/// What the relay did with one stream (stdout or stderr) of every worker together, since it started. Counted
/// when a line is queued for output or refused by --log-overflow drop; preforkctl's own messages are not
/// worker output and are not counted. A line cut at --max-line or by the partial-line timeout counts as the
/// pieces the output shows. `bytes` are the worker's bytes of the relayed lines: their text as read from the
/// pipe, without the '\n' that ends each line (a last line may have had none: the relay ends it) and before
/// any formatting (label, timestamp, JSON escaping). Lines lost to a closed stdout or stderr are in neither
/// count (finish() reports them).
struct StreamCount {
    std::uint64_t lines = 0;
    std::uint64_t bytes = 0;
    std::uint64_t dropped_lines = 0;  // --log-overflow drop only: `block` never drops a worker line
};

/// The counts of worker stdout and worker stderr. All 0 with --log-format inherit (no pipes, nothing relayed).
struct RelayCounters {
    StreamCount out;
    StreamCount err;
};

/// One of a slot's pipes as an in-place upgrade hands it to the next image (descriptors stay open).
struct PipeHandover {
    int read_fd = -1;
    int write_fd = -1;
    std::string partial;      // read, but not a whole line yet
    bool continuing = false;  // the partial continues a line already shown in part
    int pid = 0;              // whose lines they are
};

/// Everything of the relay an upgrade hands over: per slot its stdout and stderr pipe, and the output that
/// could not be written yet.
struct RelayHandover {
    std::map<int, std::pair<PipeHandover, PipeHandover>> slots;
    std::string queued_stdout;
    std::string queued_stderr;
};

class Relay {
public:
    /// Takes over spdlog's default logger (its messages are queued to stderr) until destruction.
    Relay(boost::asio::io_context& io, RelayOptions options, int out_fd = 1, int err_fd = 2);
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    /// Creates the pipes of `slot` (once; a slot keeps them for good) and starts reading them.
    Status open_slot(int slot);
    /// The descriptors a worker of `slot` gets as fd 1 and fd 2.
    [[nodiscard]] int worker_stdout(int slot) const;
    [[nodiscard]] int worker_stderr(int slot) const;

    /// Before a worker is started beside a running one of the same slot (a rolling restart): the running
    /// worker keeps its pipes, which are read until every writer has closed them and whose lines keep its
    /// pid; the next worker gets new ones. On failure nothing changes (both workers then share the pipes).
    Status separate_next_worker(int slot);

    /// Lines from the slot's current pipes are attributed to `pid` from now on (json "pid").
    void worker_started(int slot, int pid);
    /// Worker `pid` of `slot` has died: relays what is left in its pipes and ends its unterminated lines,
    /// before anything else is said about the slot.
    void worker_exited(int slot, int pid);

    /// The counts so far (for the status snapshot and the metrics); cheap, call it as often as needed.
    [[nodiscard]] RelayCounters counters() const;
    /// The next image of an upgrade goes on counting from the previous one's counts.
    void set_counters(const RelayCounters& counters);

    /// Why the relay cannot be handed over now (a replaced worker's pipes are still read), or "".
    [[nodiscard]] std::string handover_blocker() const;
    /// For an upgrade: writes what is queued (waiting up to `limit` for a slow reader) and describes the pipes
    /// and what is left queued. Nothing is given up: if the upgrade does not happen, the relay goes on as before.
    RelayHandover hand_over(std::chrono::milliseconds limit);
    /// The next image: reads the pipes of `slot` that the previous one handed over, continuing its lines.
    Status adopt_slot(int slot, const PipeHandover& out, const PipeHandover& err);
    /// The next image: queues what the previous one could not write yet, before anything else.
    void queue_handed_over(std::string_view out, std::string_view err);

    /// After the event loop: drains every pipe, writes what is queued (giving up after exit_stall_limit
    /// without progress) and reports dropped lines.
    void finish();

    class Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace preforkctl::logrelay
