#pragma once
// The control protocol (SPEC §11): one JSON object per line each way. A request names its command and
// may carry the protocol version ("v"); an answer is {"v":1,"ok":true,...} or {"v":1,"ok":false,"error":...}.
// Signals become the same Request values (HUP = reload, TTIN/TTOU = scale +1/-1, TERM/INT = stop), so the
// supervisor has one path for both. Pure: parsing and encoding only.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sys/result.hpp"

namespace preforkctl::control {

/// The version this preforkctl speaks; a request with a higher "v" is refused.
constexpr int kProtocolVersion = 1;
/// Longest request line accepted (a longer one is refused and the client dropped).
constexpr std::size_t kMaxRequestBytes = 64 * 1024;

namespace request {
struct Status {};
/// scale N|+N|-N
struct Scale {
    enum class Kind { to, up, down };
    Kind kind = Kind::to;
    int count = 0;
};
/// restart SLOT|all: rolling, readiness-gated, one slot at a time.
struct Restart {
    std::optional<int> slot;  // none: all
    bool wait = false;        // answer when the rolling restart is over, not when it begins
};
/// reload (= SIGHUP): a rolling restart of every slot.
struct Reload {
    bool wait = false;
};
/// stop [--timeout DUR]: stop every worker gracefully and exit.
struct Stop {
    std::optional<std::chrono::milliseconds> timeout;  // none: --stop-timeout
};
/// signal SIG [SLOT]: send SIG to every worker's process group, or to one slot's.
struct Signal {
    int signal = 0;
    std::optional<int> slot;
};
/// upgrade [--binary PATH]: re-execute preforkctl in place (SPEC §14), answered by the new image.
struct Upgrade {
    std::optional<std::string> binary;  // none: the executable preforkctl was started from
};

}  // namespace request

using Request = std::variant<request::Status, request::Scale, request::Restart, request::Reload, request::Stop,
                             request::Signal, request::Upgrade>;

/// The command word of a request ("status", "scale", ...).
const char* command_name(const Request& request);

/// Parses one request line (without its newline). Errors name the field: "\"slot\" must be a slot number or
/// \"all\"". Never throws.
Result<Request> parse_request(std::string_view line);

/// The line a client sends for `request` (no newline).
std::string encode_request(const Request& request);

/// Parses the words of `preforkctl ctl COMMAND ARGS...` into a request ("scale +2", "signal USR1 3").
/// Restarts and reloads are waited for (see Restart::wait).
Result<Request> request_from_words(const std::vector<std::string>& words);

}  // namespace preforkctl::control
