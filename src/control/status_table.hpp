#pragma once
// `preforkctl ctl status` for a person: the Snapshot as a header line and aligned tables, in the manner of
// `supervisorctl status` and `pm2 ls`. Pure: text in, text out.

#include <cstdint>
#include <string>

#include "control/snapshot.hpp"

namespace preforkctl::control {

/// The status as text ending in a newline: a line about preforkctl (name, pid, workers, generation, uptime,
/// "rolling restart", "stopping"), one row per slot (each draining worker on an indented line under it),
/// then one row per listener. Unknown values show as "-". Columns are as wide as their widest cell; with
/// `color`, the STATE cell carries ANSI SGR colours (ready green; starting, draining and stopping yellow;
/// backoff and parked red; stopped dim), which the widths do not count.
std::string render_status_table(const Snapshot& snapshot, bool color);

/// An uptime to the two largest units, rounded down: "45s", "3m05s", "2h03m", "4d02h"; "-" when negative
/// or not a number.
std::string format_uptime(double seconds);

/// How long ago, in its largest unit, rounded down: "5s", "2m", "3h", "4d"; "-" when negative or not a number.
std::string format_age(double seconds);

/// A size in binary units with one decimal: "0.5 KiB", "12.3 MiB", "1.0 GiB" (KiB below 1 MiB, MiB below
/// 1 GiB, GiB from there on).
std::string format_bytes(std::uint64_t bytes);

}  // namespace preforkctl::control
