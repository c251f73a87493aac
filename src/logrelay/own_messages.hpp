#pragma once
// preforkctl's own messages (spdlog): how they look, so that they stand apart from worker lines in prefix
// format ("preforkctl: warning: text") and read as the same kind of line in json format.

#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class formatter;
}

namespace preforkctl::logrelay {

/// How preforkctl's own messages are written.
enum class OwnFormat { text, json };

/// One own message, with its '\n': `preforkctl: LEVEL: text` or, in json,
/// `{"ts":"...","source":"preforkctl","pid":PID,"stream":"stderr","level":"LEVEL","line":"text"}` (`ts` as
/// format_timestamp, `pid` preforkctl's own, LEVEL spdlog's name: debug, info, warning, error, critical).
void append_own_message(std::string& out, OwnFormat format, std::string_view timestamp, int pid,
                        std::string_view level, std::string_view text);

/// An spdlog formatter that writes messages as append_own_message does.
std::unique_ptr<spdlog::formatter> own_message_formatter(OwnFormat format);

}  // namespace preforkctl::logrelay
