#pragma once
// Durations ("250ms", "5s", "2m", "1h"; a bare number is seconds), sizes ("512M") and signal names. Pure.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "sys/result.hpp"

namespace preforkctl::plan {

using Millis = std::chrono::milliseconds;

/// Parses a duration; Error "invalid duration '5x' (use e.g. 250ms, 5s, 2m)".
Result<Millis> parse_duration(std::string_view text);

/// Formats the shortest exact form: 1500ms -> "1500ms", 5000ms -> "5s", 120000ms -> "2m".
std::string format_duration(Millis duration);

/// Parses a size in bytes: a bare number, or one with K, M, G or T (KiB, MiB, GiB, TiB; also written
/// "KiB".."TiB" or in lower case). Error "invalid size '5x' (use e.g. 512M, 2G)".
Result<std::uint64_t> parse_size(std::string_view text);

/// Formats a size in the largest unit that divides it: 536870912 -> "512 MiB", 1000 -> "1000 bytes".
std::string format_size(std::uint64_t bytes);

/// "TERM", "SIGTERM", "term" or "15" -> 15. Error "unknown signal 'FOO'".
Result<int> parse_signal(std::string_view text);

/// 15 -> "SIGTERM"; unknown numbers -> "signal N".
std::string signal_name(int signal);

}  // namespace preforkctl::plan
