#include "control/snapshot_json.hpp"

#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace preforkctl::control {

using nlohmann::json;

namespace {

json optional_number(const std::optional<std::uint32_t>& value) {
    return value ? json(*value) : json(nullptr);
}

json counters_to_json(const StreamCounters& counters) {
    return json{{"lines", counters.lines}, {"bytes", counters.bytes}, {"dropped_lines", counters.dropped_lines}};
}

json slot_to_json(const SlotStatus& slot) {
    json last_exit = nullptr;
    if (slot.last_exit) {
        last_exit = json{{"signaled", slot.last_exit->signaled},
                         {"value", slot.last_exit->value},
                         {"text", slot.last_exit->text},
                         {"seconds_ago", slot.last_exit->seconds_ago}};
    }
    json usage = nullptr;
    if (slot.usage) {
        usage = json{{"rss_bytes", slot.usage->rss_bytes},
                     {"cpu_seconds", slot.usage->cpu_seconds},
                     {"processes", slot.usage->processes}};
    }
    return json{{"slot", slot.slot},
                {"pid", slot.pid},
                {"cpus", slot.cpus},
                {"state", slot.state},
                {"ready", slot.ready},
                {"uptime_seconds", slot.uptime_seconds},
                {"restarts_in_window", slot.restarts_in_window},
                {"restarts_total", slot.restarts_total},
                {"restarts_by_reason", slot.restarts_by_reason},
                {"last_exit", std::move(last_exit)},
                {"usage", std::move(usage)},
                {"cpu_percent", slot.cpu_percent},
                {"generation", slot.generation},
                {"draining", slot.draining}};
}

json listener_to_json(const ListenerStatus& listener) {
    return json{{"name", listener.name},
                {"address", listener.address},
                {"mode", listener.mode},
                {"slot", listener.slot},
                {"queue", optional_number(listener.queue)},
                {"backlog", optional_number(listener.backlog)}};
}

// Thrown by the readers below and caught only in snapshot_from_json: the nesting of slots, listeners and
// their optional parts would otherwise need an error check after every field.
struct WrongField {
    std::string message;
};

[[noreturn]] void wrong(const std::string& path, const char* expected) {
    throw WrongField{"\"" + path + "\" must be " + expected};
}

template <class Int>
Int read_integer(const json& value, const std::string& path) {
    // nlohmann keeps a non-negative JSON integer as unsigned and a negative one as signed; 3.0 is a float.
    if (value.is_number_unsigned()) {
        const auto number = value.get<std::uint64_t>();
        if (std::in_range<Int>(number)) return static_cast<Int>(number);
    } else if (value.is_number_integer()) {
        const auto number = value.get<std::int64_t>();
        if (std::in_range<Int>(number)) return static_cast<Int>(number);
    } else {
        wrong(path, std::is_signed_v<Int> ? "an integer" : "a non-negative integer");
    }
    wrong(path, std::is_signed_v<Int> ? "an integer in range" : "a non-negative integer in range");
}

// The members of one JSON object, read into typed fields. A member that is missing or null leaves the
// field as it is (its default); unknown members are ignored.
class Fields {
public:
    Fields(const json& object, std::string where) : object_(object), where_(std::move(where)) {
        if (!object_.is_object()) wrong(where_, "an object");
    }

    // The member `key`, or nullptr when it is missing or null.
    [[nodiscard]] const json* find(const char* key) const {
        const auto found = object_.find(key);
        return found == object_.end() || found->is_null() ? nullptr : &*found;
    }

    [[nodiscard]] std::string path(const std::string& key) const { return where_.empty() ? key : where_ + "." + key; }

    void read(const char* key, std::string& out) const {
        if (const json* value = find(key)) {
            if (!value->is_string()) wrong(path(key), "a string");
            out = value->get<std::string>();
        }
    }
    void read(const char* key, bool& out) const {
        if (const json* value = find(key)) {
            if (!value->is_boolean()) wrong(path(key), "true or false");
            out = value->get<bool>();
        }
    }
    void read(const char* key, double& out) const {
        if (const json* value = find(key)) {
            if (!value->is_number()) wrong(path(key), "a number");
            out = value->get<double>();
        }
    }
    void read(const char* key, int& out) const {
        if (const json* value = find(key)) out = read_integer<int>(*value, path(key));
    }
    void read(const char* key, std::uint64_t& out) const {
        if (const json* value = find(key)) out = read_integer<std::uint64_t>(*value, path(key));
    }
    void read(const char* key, std::optional<std::uint32_t>& out) const {
        if (const json* value = find(key)) out = read_integer<std::uint32_t>(*value, path(key));
    }
    // A count per name: {"rss": 2, "lifetime": 1}.
    void read(const char* key, std::map<std::string, std::uint64_t>& out) const {
        const json* counts = find(key);
        if (counts == nullptr) return;
        if (!counts->is_object()) wrong(path(key), "an object");
        for (const auto& [name, count] : counts->items()) {
            out[name] = read_integer<std::uint64_t>(count, path(key) + "." + name);
        }
    }

    // Calls `read_one(element, path)` for each element of the array `key`.
    template <class ReadOne>
    void each(const char* key, ReadOne read_one) const {
        const json* value = find(key);
        if (value == nullptr) return;
        if (!value->is_array()) wrong(path(key), "an array");
        for (std::size_t i = 0; i < value->size(); ++i) {
            read_one((*value)[i], path(key) + "[" + std::to_string(i) + "]");
        }
    }

private:
    const json& object_;
    std::string where_;
};

StreamCounters counters_from_json(const json& object, const std::string& where) {
    StreamCounters counters;
    const Fields fields(object, where);
    fields.read("lines", counters.lines);
    fields.read("bytes", counters.bytes);
    fields.read("dropped_lines", counters.dropped_lines);
    return counters;
}

LastExit last_exit_from_json(const json& object, const std::string& where) {
    LastExit last_exit;
    const Fields fields(object, where);
    fields.read("signaled", last_exit.signaled);
    fields.read("value", last_exit.value);
    fields.read("text", last_exit.text);
    fields.read("seconds_ago", last_exit.seconds_ago);
    return last_exit;
}

TreeUsage usage_from_json(const json& object, const std::string& where) {
    TreeUsage usage;
    const Fields fields(object, where);
    fields.read("rss_bytes", usage.rss_bytes);
    fields.read("cpu_seconds", usage.cpu_seconds);
    fields.read("processes", usage.processes);
    return usage;
}

SlotStatus slot_from_json(const json& object, const std::string& where) {
    SlotStatus slot;
    const Fields fields(object, where);
    fields.read("slot", slot.slot);
    fields.read("pid", slot.pid);
    fields.read("cpus", slot.cpus);
    fields.read("state", slot.state);
    fields.read("ready", slot.ready);
    fields.read("uptime_seconds", slot.uptime_seconds);
    fields.read("restarts_in_window", slot.restarts_in_window);
    fields.read("restarts_total", slot.restarts_total);
    fields.read("restarts_by_reason", slot.restarts_by_reason);
    if (const json* last_exit = fields.find("last_exit")) {
        slot.last_exit = last_exit_from_json(*last_exit, fields.path("last_exit"));
    }
    if (const json* usage = fields.find("usage")) slot.usage = usage_from_json(*usage, fields.path("usage"));
    fields.read("cpu_percent", slot.cpu_percent);
    fields.read("generation", slot.generation);
    fields.each("draining", [&](const json& pid, const std::string& path) {
        slot.draining.push_back(read_integer<int>(pid, path));
    });
    return slot;
}

ListenerStatus listener_from_json(const json& object, const std::string& where) {
    ListenerStatus listener;
    const Fields fields(object, where);
    fields.read("name", listener.name);
    fields.read("address", listener.address);
    fields.read("mode", listener.mode);
    fields.read("slot", listener.slot);
    fields.read("queue", listener.queue);
    fields.read("backlog", listener.backlog);
    return listener;
}

}  // namespace

json snapshot_to_json(const Snapshot& snapshot) {
    json slots = json::array();
    for (const SlotStatus& slot : snapshot.slots) slots.push_back(slot_to_json(slot));
    json listeners = json::array();
    for (const ListenerStatus& listener : snapshot.listeners) listeners.push_back(listener_to_json(listener));
    json result{{"name", snapshot.name},
                {"version", snapshot.version},
                {"pid", snapshot.pid},
                {"uptime_seconds", snapshot.uptime_seconds},
                {"command", snapshot.command},
                {"workers", snapshot.workers},
                {"generation", snapshot.generation},
                {"rolling", snapshot.rolling},
                {"stopping", snapshot.stopping},
                {"slots", std::move(slots)},
                {"listeners", std::move(listeners)},
                {"out", counters_to_json(snapshot.out)},
                {"err", counters_to_json(snapshot.err)},
                {"rolling_restarts", snapshot.rolling_restarts},
                {"scale_ups", snapshot.scale_ups},
                {"scale_downs", snapshot.scale_downs},
                {"scale_reasons", {{"up", snapshot.scale_up_reasons}, {"down", snapshot.scale_down_reasons}}},
                {"recycles", snapshot.recycles},
                {"watchdog_timeouts", snapshot.watchdog_timeouts},
                {"upgrades", snapshot.upgrades}};
    if (snapshot.elastic) result["elastic"] = json{{"min", snapshot.elastic->min}, {"max", snapshot.elastic->max}};
    return result;
}

Result<Snapshot> snapshot_from_json(const json& object) {
    if (!object.is_object()) return Error{"the status must be a JSON object"};
    try {
        Snapshot snapshot;
        const Fields fields(object, "");
        fields.read("name", snapshot.name);
        fields.read("version", snapshot.version);
        fields.read("pid", snapshot.pid);
        fields.read("uptime_seconds", snapshot.uptime_seconds);
        fields.read("command", snapshot.command);
        fields.read("workers", snapshot.workers);
        fields.read("generation", snapshot.generation);
        fields.read("rolling", snapshot.rolling);
        fields.read("stopping", snapshot.stopping);
        fields.each("slots", [&](const json& slot, const std::string& path) {
            snapshot.slots.push_back(slot_from_json(slot, path));
        });
        fields.each("listeners", [&](const json& listener, const std::string& path) {
            snapshot.listeners.push_back(listener_from_json(listener, path));
        });
        if (const json* out = fields.find("out")) snapshot.out = counters_from_json(*out, "out");
        if (const json* err = fields.find("err")) snapshot.err = counters_from_json(*err, "err");
        fields.read("rolling_restarts", snapshot.rolling_restarts);
        fields.read("scale_ups", snapshot.scale_ups);
        fields.read("scale_downs", snapshot.scale_downs);
        if (const json* reasons = fields.find("scale_reasons")) {
            const Fields directions(*reasons, fields.path("scale_reasons"));
            directions.read("up", snapshot.scale_up_reasons);
            directions.read("down", snapshot.scale_down_reasons);
        }
        fields.read("recycles", snapshot.recycles);
        fields.read("watchdog_timeouts", snapshot.watchdog_timeouts);
        fields.read("upgrades", snapshot.upgrades);
        if (const json* elastic = fields.find("elastic")) {
            const Fields bounds(*elastic, fields.path("elastic"));
            ElasticStatus status;
            bounds.read("min", status.min);
            bounds.read("max", status.max);
            snapshot.elastic = status;
        }
        return snapshot;
    } catch (const WrongField& wrong_field) {
        return Error{wrong_field.message};
    } catch (const json::exception& error) {
        // Not expected once every type is checked above; kept so that no library exception leaves this file.
        return Error{std::string("the status cannot be read: ") + error.what()};
    }
}

}  // namespace preforkctl::control
