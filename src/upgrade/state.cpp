#include "upgrade/state.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

namespace preforkctl::upgrade {

namespace {

using nlohmann::json;

// Worker output is bytes, not always UTF-8, and a JSON string must be: such fields travel as hex.
std::string to_hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string text;
    text.reserve(bytes.size() * 2);
    for (const char byte : bytes) {
        const auto value = static_cast<unsigned char>(byte);
        text += digits[value >> 4];
        text += digits[value & 15];
    }
    return text;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool from_hex(std::string_view text, std::string& bytes) {
    if (text.size() % 2 != 0) return false;
    bytes.clear();
    for (std::size_t i = 0; i < text.size(); i += 2) {
        const int high = hex_digit(text[i]);
        const int low = hex_digit(text[i + 1]);
        if (high < 0 || low < 0) return false;
        bytes += static_cast<char>((high << 4) | low);
    }
    return true;
}

json to_json(const PipeState& pipe) {
    return {{"fd", pipe.fd},
            {"write_fd", pipe.write_fd},
            {"partial_hex", to_hex(pipe.partial)},
            {"continuing", pipe.continuing}};
}

json to_json(const SlotState& slot) {
    json value = {{"slot", slot.slot},
                  {"phase", slot.phase},
                  {"pid", slot.pid},
                  {"previous_pid", slot.previous_pid},
                  {"draining", slot.draining},
                  {"ready", slot.ready},
                  {"started_ms_ago", slot.started_ms_ago},
                  {"cpus", slot.cpus},
                  {"generation", slot.generation},
                  {"restarts_total", slot.restarts_total},
                  {"restarts_by_reason", slot.restarts_by_reason},
                  {"restarts_ms_ago", slot.restarts_ms_ago},
                  {"next_delay_ms", slot.next_delay_ms},
                  {"restart_in_ms", slot.restart_in_ms},
                  {"failure_reason", slot.failure_reason},
                  {"watchdog_interval_ms", slot.watchdog_interval_ms},
                  {"last_exit", nullptr},
                  {"out", to_json(slot.out)},
                  {"err", to_json(slot.err)},
                  {"notify_fd", slot.notify_fd}};
    if (slot.last_exit) {
        value["last_exit"] = {{"signaled", slot.last_exit->signaled},
                              {"value", slot.last_exit->value},
                              {"ms_ago", slot.last_exit->ms_ago}};
    }
    return value;
}

// The element type of a list or map field, void for any other.
template <class T>
struct Element {
    using type = void;
};
template <class T>
struct Element<std::vector<T>> {
    using type = T;
};
template <class Key, class T>
struct Element<std::map<Key, T>> {
    using type = T;
};

// Whether get<T>() reads `value` exactly. nlohmann-json converts any number to any integer type with a
// static_cast: 1e300 into an int is undefined behaviour, 25.7 would read as 25 and 4294967299 as 3 (an fd).
// Other kinds of value are left to get<T>(), which throws on a wrong one.
template <class T>
bool reads_exactly(const json& value) {
    using Item = typename Element<T>::type;
    if constexpr (!std::is_void_v<Item>) {
        if (!value.is_array() && !value.is_object()) return true;
        return std::all_of(value.begin(), value.end(), [](const json& item) { return reads_exactly<Item>(item); });
    } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        // nlohmann-json parses a number without a fraction or exponent as unsigned when it is not negative.
        if (value.is_number_unsigned()) return std::in_range<T>(value.get<std::uint64_t>());
        if (value.is_number_integer()) return std::in_range<T>(value.get<std::int64_t>());
        return !value.is_number();
    } else {
        return true;
    }
}

// Reading: every field must be there with its type; the first one that is not names itself.
class Reader {
public:
    explicit Reader(std::string where) : where_(std::move(where)) {}

    template <class T>
    bool take(const json& object, const char* key, T& into) {
        if (!error_.empty()) return false;
        const auto found = object.find(key);
        if (found == object.end()) return fail(std::string(key) + " is missing");
        if (!reads_exactly<T>(*found)) return fail(std::string(key) + " is not an integer in range");
        try {
            into = found->get<T>();
        } catch (const json::exception&) {
            return fail(std::string(key) + " is not a " + kind_of<T>());
        }
        return true;
    }

    // A byte field, written as hex.
    bool take_bytes(const json& object, const char* key, std::string& into) {
        std::string hex;
        if (!take(object, key, hex)) return false;
        if (!from_hex(hex, into)) return fail(std::string(key) + " is not hex");
        return true;
    }

    bool fail(const std::string& what) {
        if (error_.empty()) error_ = where_ + what;
        return false;
    }
    [[nodiscard]] const std::string& error() const { return error_; }

private:
    template <class T>
    static const char* kind_of() {
        if constexpr (std::is_same_v<T, std::string>) return "string";
        else if constexpr (std::is_same_v<T, bool>) return "boolean";
        else if constexpr (std::is_arithmetic_v<T>) return "number";
        else return "value of the expected kind";
    }

    std::string where_;
    std::string error_;
};

bool read_pipe(Reader& reader, const json& object, const char* key, PipeState& pipe) {
    json value;
    if (!reader.take(object, key, value)) return false;
    if (!value.is_object()) return reader.fail(std::string(key) + " is not an object");
    return reader.take(value, "fd", pipe.fd) && reader.take(value, "write_fd", pipe.write_fd) &&
           reader.take_bytes(value, "partial_hex", pipe.partial) && reader.take(value, "continuing", pipe.continuing);
}

bool read_slot(Reader& reader, const json& value, SlotState& slot) {
    if (!value.is_object()) return reader.fail("a slot is not an object");
    json last_exit;
    const bool fields = reader.take(value, "slot", slot.slot) && reader.take(value, "phase", slot.phase) &&
                        reader.take(value, "pid", slot.pid) && reader.take(value, "previous_pid", slot.previous_pid) &&
                        reader.take(value, "draining", slot.draining) && reader.take(value, "ready", slot.ready) &&
                        reader.take(value, "started_ms_ago", slot.started_ms_ago) &&
                        reader.take(value, "cpus", slot.cpus) && reader.take(value, "generation", slot.generation) &&
                        reader.take(value, "restarts_total", slot.restarts_total) &&
                        reader.take(value, "restarts_by_reason", slot.restarts_by_reason) &&
                        reader.take(value, "restarts_ms_ago", slot.restarts_ms_ago) &&
                        reader.take(value, "next_delay_ms", slot.next_delay_ms) &&
                        reader.take(value, "restart_in_ms", slot.restart_in_ms) &&
                        reader.take(value, "failure_reason", slot.failure_reason) &&
                        reader.take(value, "watchdog_interval_ms", slot.watchdog_interval_ms) &&
                        reader.take(value, "last_exit", last_exit) && read_pipe(reader, value, "out", slot.out) &&
                        read_pipe(reader, value, "err", slot.err) && reader.take(value, "notify_fd", slot.notify_fd);
    if (!fields) return false;
    if (last_exit.is_null()) return true;
    ExitState exit;
    if (!last_exit.is_object() || !reader.take(last_exit, "signaled", exit.signaled) ||
        !reader.take(last_exit, "value", exit.value) || !reader.take(last_exit, "ms_ago", exit.ms_ago)) {
        return reader.fail("last_exit is not an exit");
    }
    slot.last_exit = exit;
    return true;
}

bool read_listener(Reader& reader, const json& value, ListenerState& listener) {
    if (!value.is_object()) return reader.fail("a listener is not an object");
    return reader.take(value, "fd", listener.fd) && reader.take(value, "slot", listener.slot) &&
           reader.take(value, "name", listener.name) && reader.take(value, "address", listener.address) &&
           reader.take(value, "port", listener.port);
}

}  // namespace

std::string encode(const State& state) {
    json listeners = json::array();
    for (const ListenerState& listener : state.listeners) {
        listeners.push_back({{"fd", listener.fd},
                             {"slot", listener.slot},
                             {"name", listener.name},
                             {"address", listener.address},
                             {"port", listener.port}});
    }
    json slots = json::array();
    for (const SlotState& slot : state.slots) slots.push_back(to_json(slot));
    const json document = {{"version", state.version},
                           {"from_version", state.from_version},
                           {"binary", state.binary},
                           {"taken_at_ns", state.taken_at_ns},
                           {"client_fd", state.client_fd},
                           {"fd_soft_limit", state.fd_soft_limit},
                           {"workdir_fd", state.workdir_fd},
                           {"uptime_ms", state.uptime_ms},
                           {"listeners", listeners},
                           {"slots", slots},
                           {"control_fd", state.control_fd},
                           {"control_path", state.control_path},
                           {"metrics_fd", state.metrics_fd},
                           {"queued_stdout_hex", to_hex(state.queued_stdout)},
                           {"queued_stderr_hex", to_hex(state.queued_stderr)},
                           {"generation", state.generation},
                           {"counters", state.counters},
                           {"inherited", state.inherited},
                           {"output_readers", state.output_readers},
                           {"announced_ready", state.announced_ready},
                           {"first_worker_failure", state.first_worker_failure}};
    // Names and addresses come from the command line and may hold any bytes: replaced, not thrown.
    return document.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<State> decode(std::string_view text) {
    const json document = json::parse(text, nullptr, false);
    if (document.is_discarded() || !document.is_object()) return Error{"the upgrade state is not a JSON object"};
    State state;
    Reader reader("the upgrade state: ");
    if (!reader.take(document, "version", state.version)) return Error{reader.error()};
    if (state.version != kStateVersion) {
        return Error{"the upgrade state has version " + std::to_string(state.version) + ", this preforkctl reads " +
                     std::to_string(kStateVersion) + " only"};
    }
    json listeners;
    json slots;
    const bool fields = reader.take(document, "from_version", state.from_version) &&
                        reader.take(document, "binary", state.binary) &&
                        reader.take(document, "taken_at_ns", state.taken_at_ns) &&
                        reader.take(document, "client_fd", state.client_fd) &&
                        reader.take(document, "fd_soft_limit", state.fd_soft_limit) &&
                        reader.take(document, "workdir_fd", state.workdir_fd) &&
                        reader.take(document, "uptime_ms", state.uptime_ms) &&
                        reader.take(document, "listeners", listeners) && reader.take(document, "slots", slots) &&
                        reader.take(document, "control_fd", state.control_fd) &&
                        reader.take(document, "control_path", state.control_path) &&
                        reader.take(document, "metrics_fd", state.metrics_fd) &&
                        reader.take_bytes(document, "queued_stdout_hex", state.queued_stdout) &&
                        reader.take_bytes(document, "queued_stderr_hex", state.queued_stderr) &&
                        reader.take(document, "generation", state.generation) &&
                        reader.take(document, "counters", state.counters) &&
                        reader.take(document, "inherited", state.inherited) &&
                        reader.take(document, "output_readers", state.output_readers) &&
                        reader.take(document, "announced_ready", state.announced_ready) &&
                        reader.take(document, "first_worker_failure", state.first_worker_failure);
    if (!fields) return Error{reader.error()};
    if (!listeners.is_array() || !slots.is_array()) return Error{"the upgrade state: listeners and slots must be arrays"};
    for (const json& value : listeners) {
        ListenerState listener;
        if (!read_listener(reader, value, listener)) return Error{reader.error()};
        state.listeners.push_back(std::move(listener));
    }
    for (const json& value : slots) {
        SlotState slot;
        if (!read_slot(reader, value, slot)) return Error{reader.error()};
        state.slots.push_back(std::move(slot));
    }
    return state;
}

std::vector<int> descriptors(const State& state) {
    std::set<int> fds;
    const auto keep = [&](int fd) {
        if (fd >= 0) fds.insert(fd);
    };
    keep(state.workdir_fd);
    keep(state.control_fd);
    keep(state.metrics_fd);
    keep(state.client_fd);
    for (const ListenerState& listener : state.listeners) keep(listener.fd);
    for (const SlotState& slot : state.slots) {
        for (const PipeState* pipe : {&slot.out, &slot.err}) {
            keep(pipe->fd);
            keep(pipe->write_fd);
        }
        keep(slot.notify_fd);
    }
    return {fds.begin(), fds.end()};
}

}  // namespace preforkctl::upgrade
