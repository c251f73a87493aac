#pragma once
// Durations ("250ms", "5s", "2m", "1h"; a bare number is seconds) and signal names. Pure.

#include <chrono>
#include <string>
#include <string_view>

#include "sys/result.hpp"

namespace preforkctl::plan {

using Millis = std::chrono::milliseconds;

/// Parses a duration; Error "invalid duration '5x' (use e.g. 250ms, 5s, 2m)".
Result<Millis> parse_duration(std::string_view text);

/// Formats the shortest exact form: 1500ms -> "1500ms", 5000ms -> "5s", 120000ms -> "2m".
std::string format_duration(Millis duration);

/// "TERM", "SIGTERM", "term" or "15" -> 15. Error "unknown signal 'FOO'".
Result<int> parse_signal(std::string_view text);

/// 15 -> "SIGTERM"; unknown numbers -> "signal N".
std::string signal_name(int signal);

}  // namespace preforkctl::plan
