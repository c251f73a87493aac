#include "metrics/exposition.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <utility>
#include <vector>

namespace preforkctl::metrics {

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// The exposition format's label-value escapes (text format 0.0.4): backslash, double quote, line feed.
std::string escape_label_value(const std::string& value) {
    std::string escaped;
    escaped.reserve(value.size());
    for (const char c : value) {
        switch (c) {
            case '\\': escaped += "\\\\"; break;
            case '"': escaped += "\\\""; break;
            case '\n': escaped += "\\n"; break;
            default: escaped += c;
        }
    }
    return escaped;
}

std::string number(std::uint64_t value) { return std::to_string(value); }
std::string number(int value) { return std::to_string(value); }

// std::to_chars gives the shortest text that reads back to the same double, whatever the locale; the format
// spells the non-finite values its own way.
std::string number(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    std::array<char, 64> text{};
    const auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc{} ? std::string(text.data(), end) : "NaN";
}

std::string slot_label(int slot) { return std::to_string(slot); }

// Appends one family: its HELP and TYPE lines, then its samples, which share the family's name.
class Writer {
public:
    void family(const char* name, const char* type, const char* help) {
        name_ = name;
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    void sample(const Labels& labels, const std::string& value) {
        out_ += name_;
        if (!labels.empty()) {
            out_ += '{';
            const char* separator = "";
            for (const auto& [key, label_value] : labels) {
                out_ += separator;
                out_ += key;
                out_ += "=\"";
                out_ += escape_label_value(label_value);
                out_ += '"';
                separator = ",";
            }
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }

    std::string take() { return std::move(out_); }

private:
    std::string out_;
    std::string name_;
};

// The states a slot can be in, in the order of its life; each is always exposed so that a state nobody is in
// reads 0 instead of vanishing from queries.
constexpr std::array<const char*, 7> kStates = {"starting", "ready",   "draining", "backoff",
                                                "parked",   "stopping", "stopped"};

bool is_known_state(const std::string& state) {
    return std::any_of(kStates.begin(), kStates.end(), [&](const char* known) { return state == known; });
}

// The reasons the supervisor counts restarts by; always exposed with 0 so that rate() and increase() see the
// first restart of each kind.
constexpr std::array<const char*, 6> kReasons = {"crash", "failure", "exit", "spawn_failure", "ready_timeout", "watchdog"};

// The reasons slots are added and removed for; always exposed, with 0 when none yet.
constexpr std::array<const char*, 3> kScaleUpReasons = {"request", "load", "on_demand"};
constexpr std::array<const char*, 2> kScaleDownReasons = {"request", "idle"};

// One sample per reason of `counts` (the known `reasons` always, with 0), labelled `label`=`value` and reason;
// a total above their sum is filed under "other", so that summing over reason gives the total.
template <std::size_t N>
void write_counts(Writer& w, const char* label, const char* value, std::map<std::string, std::uint64_t> counts,
                  const std::array<const char*, N>& reasons, std::uint64_t total) {
    for (const char* reason : reasons) counts.try_emplace(reason, 0);
    const std::uint64_t counted = std::accumulate(counts.begin(), counts.end(), std::uint64_t{0},
                                                  [](std::uint64_t sum, const auto& c) { return sum + c.second; });
    if (total > counted) counts["other"] += total - counted;
    for (const auto& [reason, count] : counts) w.sample({{label, value}, {"reason", reason}}, number(count));
}

void write_process(Writer& w, const control::Snapshot& snapshot) {
    w.family("preforkctl_build_info", "gauge", "preforkctl's version, as a label; the value is always 1.");
    w.sample({{"version", snapshot.version}}, "1");
    w.family("preforkctl_uptime_seconds", "gauge", "Seconds since preforkctl started.");
    w.sample({}, number(snapshot.uptime_seconds));
    w.family("preforkctl_workers_desired", "gauge", "Worker slots wanted now (planned, then scaled).");
    w.sample({}, number(snapshot.workers));
    w.family("preforkctl_generation", "gauge", "Rolling restarts begun since preforkctl started.");
    w.sample({}, number(snapshot.generation));
}

void write_states(Writer& w, const control::Snapshot& snapshot) {
    std::map<std::string, std::uint64_t> by_state;
    for (const char* state : kStates) by_state[state] = 0;
    std::uint64_t draining = 0;
    for (const auto& slot : snapshot.slots) {
        ++by_state[slot.state];
        draining += slot.draining.size();
    }
    w.family("preforkctl_workers", "gauge", "Worker slots by state.");
    for (const char* state : kStates) w.sample({{"state", state}}, number(by_state[state]));
    for (const auto& [state, count] : by_state) {
        if (!is_known_state(state)) w.sample({{"state", state}}, number(count));
    }
    w.family("preforkctl_draining_workers", "gauge",
             "Replaced workers still finishing what they serve, over all slots.");
    w.sample({}, number(draining));
}

void write_slots(Writer& w, const control::Snapshot& snapshot) {
    const auto& slots = snapshot.slots;
    w.family("preforkctl_worker_restarts_total", "counter", "Restarts of a slot's worker, by reason.");
    for (const auto& slot : slots) {
        std::map<std::string, std::uint64_t> reasons = slot.restarts_by_reason;
        for (const char* reason : kReasons) reasons.try_emplace(reason, 0);
        const std::uint64_t counted = std::accumulate(reasons.begin(), reasons.end(), std::uint64_t{0},
                                                      [](std::uint64_t sum, const auto& r) { return sum + r.second; });
        // Summing over reason must give the slot's total; restarts nobody gave a reason for are not lost.
        if (slot.restarts_total > counted) reasons["other"] += slot.restarts_total - counted;
        for (const char* reason : kReasons) {
            w.sample({{"slot", slot_label(slot.slot)}, {"reason", reason}}, number(reasons[reason]));
            reasons.erase(reason);
        }
        for (const auto& [reason, count] : reasons) {
            w.sample({{"slot", slot_label(slot.slot)}, {"reason", reason}}, number(count));
        }
    }
    w.family("preforkctl_worker_up", "gauge", "1 when a worker process runs in the slot.");
    for (const auto& slot : slots) w.sample({{"slot", slot_label(slot.slot)}}, slot.pid > 0 ? "1" : "0");
    w.family("preforkctl_worker_ready", "gauge", "1 when the slot's worker is ready.");
    for (const auto& slot : slots) w.sample({{"slot", slot_label(slot.slot)}}, slot.ready ? "1" : "0");
    w.family("preforkctl_worker_uptime_seconds", "gauge", "Seconds the slot's current worker has run; 0 when none.");
    for (const auto& slot : slots) w.sample({{"slot", slot_label(slot.slot)}}, number(slot.uptime_seconds));
    w.family("preforkctl_worker_generation", "gauge", "PREFORK_GENERATION of the slot's current worker.");
    for (const auto& slot : slots) w.sample({{"slot", slot_label(slot.slot)}}, number(slot.generation));

    // Usage is absent when /proc could not be read; no sample beats a made-up 0.
    w.family("preforkctl_worker_resident_memory_bytes", "gauge",
             "Resident memory of the worker's process tree, in bytes.");
    for (const auto& slot : slots) {
        if (slot.usage) w.sample({{"slot", slot_label(slot.slot)}}, number(slot.usage->rss_bytes));
    }
    w.family("preforkctl_worker_cpu_seconds_total", "counter",
             "User and system CPU seconds of the live processes of the worker's tree.");
    for (const auto& slot : slots) {
        if (slot.usage) w.sample({{"slot", slot_label(slot.slot)}}, number(slot.usage->cpu_seconds));
    }
    w.family("preforkctl_worker_processes", "gauge", "Processes in the worker's tree.");
    for (const auto& slot : slots) {
        if (slot.usage) w.sample({{"slot", slot_label(slot.slot)}}, number(slot.usage->processes));
    }
}

void write_listeners(Writer& w, const control::Snapshot& snapshot) {
    auto labels = [](const control::ListenerStatus& listener) {
        return Labels{{"listener", listener.name},
                      {"address", listener.address},
                      {"slot", listener.slot < 0 ? "all" : slot_label(listener.slot)}};
    };
    w.family("preforkctl_listener_queue_length", "gauge",
             "Connections waiting in the listening socket's accept queue.");
    for (const auto& listener : snapshot.listeners) {
        if (listener.queue) w.sample(labels(listener), number(std::uint64_t{*listener.queue}));
    }
    w.family("preforkctl_listener_backlog", "gauge", "The accept queue's limit of the listening socket.");
    for (const auto& listener : snapshot.listeners) {
        if (listener.backlog) w.sample(labels(listener), number(std::uint64_t{*listener.backlog}));
    }
}

void write_output(Writer& w, const control::Snapshot& snapshot) {
    const std::pair<const char*, const control::StreamCounters*> streams[] = {{"stdout", &snapshot.out},
                                                                              {"stderr", &snapshot.err}};
    w.family("preforkctl_output_lines_total", "counter", "Lines of worker output relayed, by stream.");
    for (const auto& [stream, counters] : streams) w.sample({{"stream", stream}}, number(counters->lines));
    w.family("preforkctl_output_bytes_total", "counter", "Bytes of worker output relayed, by stream.");
    for (const auto& [stream, counters] : streams) w.sample({{"stream", stream}}, number(counters->bytes));
    w.family("preforkctl_output_dropped_lines_total", "counter",
             "Lines of worker output dropped under --log-overflow drop, by stream.");
    for (const auto& [stream, counters] : streams) w.sample({{"stream", stream}}, number(counters->dropped_lines));
}

void write_events(Writer& w, const control::Snapshot& snapshot) {
    w.family("preforkctl_rolling_restarts_total", "counter", "Slots replaced by rolling restarts.");
    w.sample({}, number(snapshot.rolling_restarts));
    w.family("preforkctl_scale_events_total", "counter",
             "Slots added (up) or removed (down), by reason: request (ctl scale, TTIN, TTOU), load, on_demand, idle.");
    write_counts(w, "direction", "up", snapshot.scale_up_reasons, kScaleUpReasons, snapshot.scale_ups);
    write_counts(w, "direction", "down", snapshot.scale_down_reasons, kScaleDownReasons, snapshot.scale_downs);
    w.family("preforkctl_recycles_total", "counter", "Workers replaced for --max-rss (rss) or --max-lifetime (lifetime).");
    for (const char* reason : {"rss", "lifetime"}) {
        const auto found = snapshot.recycles.find(reason);
        w.sample({{"reason", reason}}, number(found == snapshot.recycles.end() ? 0 : found->second));
    }
    w.family("preforkctl_watchdog_timeouts_total", "counter",
             "Workers killed by --watchdog: no WATCHDOG=1 in time, or WATCHDOG=trigger.");
    w.sample({}, number(snapshot.watchdog_timeouts));
    w.family("preforkctl_upgrades_total", "counter", "In-place upgrades (ctl upgrade) since preforkctl started.");
    w.sample({}, number(snapshot.upgrades));
    if (snapshot.elastic) {
        w.family("preforkctl_workers_min", "gauge", "The lower bound of -n MIN..MAX.");
        w.sample({}, number(snapshot.elastic->min));
        w.family("preforkctl_workers_max", "gauge", "The upper bound of -n MIN..MAX.");
        w.sample({}, number(snapshot.elastic->max));
    }
}

}  // namespace

std::string render_metrics(const control::Snapshot& snapshot) {
    Writer w;
    write_process(w, snapshot);
    write_states(w, snapshot);
    write_slots(w, snapshot);
    write_listeners(w, snapshot);
    write_output(w, snapshot);
    write_events(w, snapshot);
    return w.take();
}

}  // namespace preforkctl::metrics
