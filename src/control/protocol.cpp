#include "control/protocol.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "plan/durations.hpp"

namespace preforkctl::control {

namespace {

using nlohmann::json;

// Slot numbers and counts beyond this are refused by the parser; the supervisor decides what is allowed.
constexpr int kLargestNumber = 1 << 20;

Error bad(std::string message) { return Error{std::move(message), 0, ExitCode::usage}; }

std::optional<int> to_number(std::string_view text) {
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || text.empty() || value < 0 ||
        value > kLargestNumber) {
        return std::nullopt;
    }
    return value;
}

Result<request::Scale> scale_from_text(std::string_view text) {
    request::Scale scale;
    if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
        scale.kind = text.front() == '+' ? request::Scale::Kind::up : request::Scale::Kind::down;
        text.remove_prefix(1);
    }
    const auto count = to_number(text);
    if (!count) return bad("scale: \"" + std::string(text) + "\" is not N, +N or -N");
    scale.count = *count;
    return scale;
}

Result<std::optional<int>> slot_from_text(std::string_view text, bool all_allowed) {
    if (all_allowed && text == "all") return std::optional<int>{};
    const auto slot = to_number(text);
    if (!slot) {
        // Appended piece by piece: GCC 12 at -O3 misreads "literal" + std::string&& as an overlapping memcpy.
        std::string why = "\"";
        why.append(text).append("\" is not a slot number").append(all_allowed ? " or \"all\"" : "");
        return bad(why);
    }
    return std::optional<int>{*slot};
}

// A JSON field that may be a string or a non-negative integer, as text ("3", "+2", "USR1").
std::optional<std::string> field_text(const json& object, const char* key) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    // A number is an absolute value: -3 must not pass for the text "-3" (scale down by 3).
    if (it->is_number_unsigned()) return std::to_string(it->get<std::uint64_t>());
    return std::string("\x01");  // present but of the wrong type: no parser accepts it
}

Result<Request> from_object(const json& object) {
    if (const auto version = object.find("v"); version != object.end()) {
        if (!version->is_number_integer()) return bad("\"v\" must be an integer");
        if (version->get<std::int64_t>() > kProtocolVersion) {
            return bad("protocol version " + std::to_string(version->get<std::int64_t>()) +
                       " is not supported (this preforkctl speaks " + std::to_string(kProtocolVersion) + ")");
        }
    }
    const auto cmd = object.find("cmd");
    if (cmd == object.end() || !cmd->is_string()) return bad("a request needs \"cmd\" (a string)");
    const std::string name = cmd->get<std::string>();
    if (name == "status") return Request{request::Status{}};
    const auto wait_field = object.find("wait");
    if (wait_field != object.end() && !wait_field->is_boolean()) return bad("\"wait\" must be true or false");
    const bool wait = wait_field != object.end() && wait_field->get<bool>();
    if (name == "reload") return Request{request::Reload{wait}};
    if (name == "scale") {
        const auto workers = field_text(object, "workers");
        if (!workers) return bad("scale needs \"workers\": N, \"+N\" or \"-N\"");
        auto scale = scale_from_text(*workers);
        if (!scale) return scale.error();
        return Request{*scale};
    }
    if (name == "restart") {
        const auto slot = field_text(object, "slot");
        if (!slot) return bad("restart needs \"slot\": a slot number or \"all\"");
        auto which = slot_from_text(*slot, true);
        if (!which) return Error{"restart: " + which.error().message, 0, ExitCode::usage};
        return Request{request::Restart{*which, wait}};
    }
    if (name == "stop") {
        request::Stop stop;
        if (const auto timeout = field_text(object, "timeout")) {
            auto duration = plan::parse_duration(*timeout);
            if (!duration) return bad("stop: " + duration.error().message);
            stop.timeout = *duration;
        }
        return Request{stop};
    }
    if (name == "signal") {
        const auto signal = field_text(object, "signal");
        if (!signal) return bad("signal needs \"signal\": a name such as USR1, or a number");
        auto number = plan::parse_signal(*signal);
        if (!number) return bad("signal: " + number.error().message);
        request::Signal request{*number, std::nullopt};
        if (const auto slot = field_text(object, "slot")) {
            auto which = slot_from_text(*slot, false);
            if (!which) return Error{"signal: " + which.error().message, 0, ExitCode::usage};
            request.slot = *which;
        }
        return Request{request};
    }
    if (name == "upgrade") {
        request::Upgrade upgrade;
        if (const auto binary = object.find("binary"); binary != object.end() && !binary->is_null()) {
            if (!binary->is_string() || binary->get<std::string>().empty()) {
                return bad("\"binary\" must be the path of an executable");
            }
            upgrade.binary = binary->get<std::string>();
        }
        return Request{upgrade};
    }
    return bad("unknown command \"" + name + "\" (status, scale, restart, reload, stop, signal, upgrade)");
}

}  // namespace

const char* command_name(const Request& request) {
    struct Name {
        const char* operator()(const request::Status&) const { return "status"; }
        const char* operator()(const request::Scale&) const { return "scale"; }
        const char* operator()(const request::Restart&) const { return "restart"; }
        const char* operator()(const request::Reload&) const { return "reload"; }
        const char* operator()(const request::Stop&) const { return "stop"; }
        const char* operator()(const request::Signal&) const { return "signal"; }
        const char* operator()(const request::Upgrade&) const { return "upgrade"; }
    };
    return std::visit(Name{}, request);
}

Result<Request> parse_request(std::string_view line) {
    if (line.size() > kMaxRequestBytes) return bad("request longer than " + std::to_string(kMaxRequestBytes) + " bytes");
    // Without exceptions: a parse error gives a discarded value, never a throw.
    const json object = json::parse(line, nullptr, false);
    if (object.is_discarded()) return bad("request is not JSON");
    if (!object.is_object()) return bad("request is not a JSON object");
    try {
        return from_object(object);
    } catch (const json::exception& error) {  // a value out of range for get<>(), say
        return bad(std::string("bad request: ") + error.what());
    }
}

std::string encode_request(const Request& request) {
    json object = {{"v", kProtocolVersion}, {"cmd", command_name(request)}};
    if (const auto* scale = std::get_if<request::Scale>(&request)) {
        const char* sign = scale->kind == request::Scale::Kind::up     ? "+"
                           : scale->kind == request::Scale::Kind::down ? "-"
                                                                       : "";
        object["workers"] = std::string(sign).append(std::to_string(scale->count));
    } else if (const auto* restart = std::get_if<request::Restart>(&request)) {
        object["slot"] = restart->slot ? json(*restart->slot) : json("all");
        if (restart->wait) object["wait"] = true;
    } else if (const auto* reload = std::get_if<request::Reload>(&request)) {
        if (reload->wait) object["wait"] = true;
    } else if (const auto* stop = std::get_if<request::Stop>(&request)) {
        if (stop->timeout) object["timeout"] = std::to_string(stop->timeout->count()) + "ms";
    } else if (const auto* signal = std::get_if<request::Signal>(&request)) {
        const std::string name = plan::signal_name(signal->signal);
        object["signal"] = name.starts_with("SIG") ? json(name) : json(signal->signal);
        if (signal->slot) object["slot"] = *signal->slot;
    } else if (const auto* upgrade = std::get_if<request::Upgrade>(&request)) {
        if (upgrade->binary) object["binary"] = *upgrade->binary;
    }
    return object.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Request> request_from_words(const std::vector<std::string>& words) {
    constexpr const char* kUsage = "status [--json], scale N|+N|-N, restart SLOT|all, reload, stop [--timeout DUR], "
                                   "signal SIG [SLOT], upgrade [--binary PATH]";
    if (words.empty()) return bad(std::string("a command is needed: ") + kUsage);
    const std::string& name = words.front();
    const std::size_t args = words.size() - 1;
    const auto arity = [&](std::size_t least, std::size_t most, const char* form) -> std::optional<Error> {
        if (args < least || args > most) return bad(std::string("usage: ctl ") + form);
        return std::nullopt;
    };
    if (name == "status") {
        if (auto error = arity(0, 0, "status [--json]")) return *error;
        return Request{request::Status{}};
    }
    if (name == "reload") {
        if (auto error = arity(0, 0, "reload")) return *error;
        return Request{request::Reload{true}};
    }
    if (name == "scale") {
        if (auto error = arity(1, 1, "scale N|+N|-N")) return *error;
        auto scale = scale_from_text(words[1]);
        if (!scale) return scale.error();
        return Request{*scale};
    }
    if (name == "restart") {
        if (auto error = arity(1, 1, "restart SLOT|all")) return *error;
        auto which = slot_from_text(words[1], true);
        if (!which) return Error{"restart: " + which.error().message, 0, ExitCode::usage};
        return Request{request::Restart{*which, true}};
    }
    if (name == "stop") {
        request::Stop stop;
        if (args == 0) return Request{stop};
        std::string value;
        if (args == 1 && words[1].rfind("--timeout=", 0) == 0) {
            value = words[1].substr(10);
        } else if (args == 2 && words[1] == "--timeout") {
            value = words[2];
        } else {
            return bad("usage: ctl stop [--timeout DUR]");
        }
        auto duration = plan::parse_duration(value);
        if (!duration) return bad("stop --timeout: " + duration.error().message);
        stop.timeout = *duration;
        return Request{stop};
    }
    if (name == "signal") {
        if (auto error = arity(1, 2, "signal SIG [SLOT]")) return *error;
        auto number = plan::parse_signal(words[1]);
        if (!number) return bad("signal: " + number.error().message);
        request::Signal request{*number, std::nullopt};
        if (args == 2) {
            auto which = slot_from_text(words[2], false);
            if (!which) return Error{"signal: " + which.error().message, 0, ExitCode::usage};
            request.slot = *which;
        }
        return Request{request};
    }
    if (name == "upgrade") {
        request::Upgrade upgrade;
        if (args == 0) return Request{upgrade};
        if (args == 1 && words[1].rfind("--binary=", 0) == 0 && words[1].size() > 9) {
            upgrade.binary = words[1].substr(9);
        } else if (args == 2 && words[1] == "--binary" && !words[2].empty()) {
            upgrade.binary = words[2];
        } else {
            return bad("usage: ctl upgrade [--binary PATH]");
        }
        return Request{upgrade};
    }
    return bad("unknown command \"" + name + "\" (" + kUsage + ")");
}

}  // namespace preforkctl::control
