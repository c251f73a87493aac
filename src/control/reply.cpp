#include "control/reply.hpp"

#include <nlohmann/json.hpp>

#include "control/protocol.hpp"
#include "control/snapshot_json.hpp"

namespace preforkctl::control {

using nlohmann::json;

std::string encode_reply(const Reply& reply) {
    json object = {{"v", kProtocolVersion}, {"ok", reply.ok}};
    if (reply.ok) {
        if (!reply.message.empty()) object["message"] = reply.message;
        if (reply.status) object["status"] = snapshot_to_json(*reply.status);
    } else {
        object["error"] = reply.message;
    }
    // Worker-controlled text (a command line, say) may hold invalid UTF-8: replaced, never a throw.
    return object.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Reply> parse_reply(std::string_view line) {
    const json object = json::parse(line, nullptr, false);
    if (object.is_discarded() || !object.is_object()) return Error{"the answer is not a JSON object"};
    const auto ok = object.find("ok");
    if (ok == object.end() || !ok->is_boolean()) return Error{"the answer has no \"ok\""};
    Reply reply;
    reply.ok = ok->get<bool>();
    const auto text = object.find(reply.ok ? "message" : "error");
    if (text != object.end() && text->is_string()) reply.message = text->get<std::string>();
    if (const auto status = object.find("status"); reply.ok && status != object.end()) {
        auto snapshot = snapshot_from_json(*status);
        if (!snapshot) return snapshot.error();
        reply.status = std::move(*snapshot);
    }
    return reply;
}

}  // namespace preforkctl::control
