#pragma once
// The answer to a control request: {"v":1,"ok":true,"message":"...","status":{...}} or
// {"v":1,"ok":false,"error":"..."}, one line. Pure.

#include <optional>
#include <string>
#include <string_view>

#include "control/snapshot.hpp"
#include "sys/result.hpp"

namespace preforkctl::control {

struct Reply {
    bool ok = true;
    std::string message;             // what happened, or why not (ok = false), one sentence
    std::optional<Snapshot> status;  // the answer to `status`
    bool keep_open = false;          // the server keeps the connection until preforkctl exits (stop)
};

/// A refusal with its reason.
inline Reply refused(std::string why) { return Reply{false, std::move(why), std::nullopt, false}; }

/// The line sent for `reply` (no newline).
std::string encode_reply(const Reply& reply);

/// Parses an answer line (the client side).
Result<Reply> parse_reply(std::string_view line);

}  // namespace preforkctl::control
