#include "control/status_table.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkctl::control {

namespace {

constexpr std::string_view kUnknown = "-";
constexpr std::string_view kGap = "  ";

enum class Colour { none, green, yellow, red, dim };

struct Cell {
    std::string text;
    Colour colour = Colour::none;
};
using Row = std::vector<Cell>;

std::string_view sgr(Colour colour) {
    switch (colour) {
        case Colour::none: return "";
        case Colour::green: return "\x1b[32m";
        case Colour::yellow: return "\x1b[33m";
        case Colour::red: return "\x1b[31m";
        case Colour::dim: return "\x1b[2m";
    }
    return "";
}

Colour state_colour(std::string_view state) {
    if (state == "ready") return Colour::green;
    if (state == "starting" || state == "draining" || state == "stopping") return Colour::yellow;
    if (state == "backoff" || state == "parked") return Colour::red;
    if (state == "stopped") return Colour::dim;
    return Colour::none;
}

// Columns are measured in characters, not bytes, so that a listener name or an address in UTF-8 does not
// push the columns after it out of line (every character counted one column wide).
std::size_t display_width(std::string_view text) {
    std::size_t width = 0;
    for (const char byte : text) {
        if ((static_cast<unsigned char>(byte) & 0xC0U) != 0x80U) ++width;
    }
    return width;
}

std::string fixed_one_decimal(double value) {
    std::array<char, 64> buffer{};
    const auto [end, error] =
        std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::fixed, 1);
    if (error != std::errc{}) return std::string(kUnknown);
    return std::string(buffer.data(), end);
}

std::string two_digits(std::uint64_t value) {
    // Not "0" + std::to_string(...): GCC 12 at -O3 misreads that as an overlapping memcpy (-Wrestrict).
    std::string digits = std::to_string(value);
    if (value < 10) digits.insert(digits.begin(), '0');
    return digits;
}

// Whole seconds, or nullopt for what cannot be a duration. The cap keeps the conversion defined for absurd
// values (an uptime of 10^300 s is a bug upstream, shown as the cap rather than as garbage).
std::optional<std::uint64_t> whole_seconds(double seconds) {
    if (!(seconds >= 0)) return std::nullopt;  // negative or NaN
    constexpr double kCap = 1e12;
    return static_cast<std::uint64_t>(std::floor(std::min(seconds, kCap)));
}

std::string text_or_unknown(const std::string& text) {
    return text.empty() ? std::string(kUnknown) : text;
}

std::string last_exit_text(const std::optional<LastExit>& last_exit) {
    if (!last_exit) return std::string(kUnknown);
    std::string text = last_exit->text;
    if (text.empty()) text = (last_exit->signaled ? "signal " : "exit ") + std::to_string(last_exit->value);
    const std::string age = format_age(last_exit->seconds_ago);
    if (age != kUnknown) text += ", " + age + " ago";
    return text;
}

Row slot_row(const SlotStatus& slot) {
    const bool running = slot.pid > 0;
    const std::string state = text_or_unknown(slot.state);
    return Row{
        {std::to_string(slot.slot)},
        {running ? std::to_string(slot.pid) : std::string(kUnknown)},
        {text_or_unknown(slot.cpus)},
        {state, state_colour(state)},
        {running ? format_uptime(slot.uptime_seconds) : std::string(kUnknown)},
        {std::to_string(slot.restarts_in_window) + "/" + std::to_string(slot.restarts_total)},
        {last_exit_text(slot.last_exit)},
        {slot.usage ? format_bytes(slot.usage->rss_bytes) : std::string(kUnknown)},
        {slot.usage ? fixed_one_decimal(slot.cpu_percent) : std::string(kUnknown)},
        {running ? std::to_string(slot.generation) : std::string(kUnknown)},
    };
}

std::string optional_number(const std::optional<std::uint32_t>& value) {
    return value ? std::to_string(*value) : std::string(kUnknown);
}

Row listener_row(const ListenerStatus& listener) {
    return Row{
        {text_or_unknown(listener.name)},  {text_or_unknown(listener.address)},
        {text_or_unknown(listener.mode)},  {listener.slot >= 0 ? std::to_string(listener.slot) : std::string(kUnknown)},
        {optional_number(listener.queue)}, {optional_number(listener.backlog)},
    };
}

// One line per row (the header first), each column as wide as its widest cell plus a gap. The last column
// is not padded, so that no line ends in spaces.
std::vector<std::string> table_lines(const std::vector<std::string_view>& headers, const std::vector<Row>& rows,
                                     bool color) {
    std::vector<std::size_t> widths;
    for (const std::string_view header : headers) widths.push_back(display_width(header));
    for (const Row& row : rows) {
        for (std::size_t column = 0; column < row.size() && column < widths.size(); ++column) {
            widths[column] = std::max(widths[column], display_width(row[column].text));
        }
    }

    const auto line_of = [&](const Row& row) {
        std::string line;
        for (std::size_t column = 0; column < row.size() && column < widths.size(); ++column) {
            const Cell& cell = row[column];
            if (color && cell.colour != Colour::none) {
                line.append(sgr(cell.colour)).append(cell.text).append("\x1b[0m");
            } else {
                line.append(cell.text);
            }
            if (column + 1 < row.size()) {
                line.append(widths[column] - display_width(cell.text), ' ').append(kGap);
            }
        }
        return line;
    };

    std::vector<std::string> lines;
    Row header_row;
    for (const std::string_view header : headers) header_row.push_back(Cell{std::string(header)});
    lines.push_back(line_of(header_row));
    for (const Row& row : rows) lines.push_back(line_of(row));
    return lines;
}

std::string summary_line(const Snapshot& snapshot) {
    int ready = 0;
    for (const SlotStatus& slot : snapshot.slots) ready += slot.ready ? 1 : 0;
    std::string line = snapshot.name.empty() ? "preforkctl" : snapshot.name;
    line += ": pid " + (snapshot.pid > 0 ? std::to_string(snapshot.pid) : std::string(kUnknown));
    line += ", workers " + std::to_string(snapshot.workers);
    if (snapshot.elastic) {
        line += " of " + std::to_string(snapshot.elastic->min) + ".." + std::to_string(snapshot.elastic->max);
    }
    line += " (" + std::to_string(ready) + " ready)";
    line += ", generation " + std::to_string(snapshot.generation);
    line += ", up " + format_uptime(snapshot.uptime_seconds);
    if (snapshot.rolling) line += ", rolling restart";
    if (snapshot.stopping) line += ", stopping";
    return line;
}

std::string counts_text(const std::map<std::string, std::uint64_t>& counts) {
    std::string text;
    for (const auto& [reason, count] : counts) {
        text += (text.empty() ? std::string(" (") : std::string(", ")) + reason + " " + std::to_string(count);
    }
    return text.empty() ? text : text + ")";
}

// Scaling, recycling and watchdog events since the start; empty when there were none.
std::string events_line(const Snapshot& snapshot) {
    std::vector<std::string> parts;
    if (snapshot.scale_ups > 0) {
        parts.push_back("scaled up " + std::to_string(snapshot.scale_ups) + counts_text(snapshot.scale_up_reasons));
    }
    if (snapshot.scale_downs > 0) {
        parts.push_back("scaled down " + std::to_string(snapshot.scale_downs) +
                        counts_text(snapshot.scale_down_reasons));
    }
    std::uint64_t recycled = 0;
    for (const auto& entry : snapshot.recycles) recycled += entry.second;
    if (recycled > 0) parts.push_back("recycled " + std::to_string(recycled) + counts_text(snapshot.recycles));
    if (snapshot.upgrades > 0) parts.push_back("upgrades " + std::to_string(snapshot.upgrades));
    if (snapshot.watchdog_timeouts > 0) {
        parts.push_back("watchdog timeouts " + std::to_string(snapshot.watchdog_timeouts));
    }
    std::string line;
    for (const std::string& part : parts) line += (line.empty() ? "" : ", ") + part;
    return line;
}

}  // namespace

std::string format_uptime(double seconds) {
    const auto whole = whole_seconds(seconds);
    if (!whole) return std::string(kUnknown);
    const std::uint64_t s = *whole;
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m" + two_digits(s % 60) + "s";
    if (s < 86400) return std::to_string(s / 3600) + "h" + two_digits(s % 3600 / 60) + "m";
    return std::to_string(s / 86400) + "d" + two_digits(s % 86400 / 3600) + "h";
}

std::string format_age(double seconds) {
    const auto whole = whole_seconds(seconds);
    if (!whole) return std::string(kUnknown);
    const std::uint64_t s = *whole;
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m";
    if (s < 86400) return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

std::string format_bytes(std::uint64_t bytes) {
    constexpr std::array<std::string_view, 3> kUnits{"KiB", "MiB", "GiB"};
    double value = static_cast<double>(bytes) / 1024.0;
    std::size_t unit = 0;
    // Moving up when the rounded figure would read 1024.0 shows 1048575 bytes as "1.0 MiB", not "1024.0 KiB".
    while (unit + 1 < kUnits.size() && std::round(value * 10.0) / 10.0 >= 1024.0) {
        value /= 1024.0;
        ++unit;
    }
    return fixed_one_decimal(value) + " " + std::string(kUnits[unit]);
}

std::string render_status_table(const Snapshot& snapshot, bool color) {
    std::string text = summary_line(snapshot) + "\n";
    if (const std::string events = events_line(snapshot); !events.empty()) text += events + "\n";
    text += "\n";

    std::vector<Row> slot_rows;
    for (const SlotStatus& slot : snapshot.slots) slot_rows.push_back(slot_row(slot));
    const auto slot_lines = table_lines(
        {"SLOT", "PID", "CPU", "STATE", "UPTIME", "RESTARTS", "LAST EXIT", "RSS", "CPU%", "GEN"}, slot_rows, color);
    text += slot_lines[0] + "\n";
    for (std::size_t i = 0; i < snapshot.slots.size(); ++i) {
        text += slot_lines[i + 1] + "\n";
        for (const int pid : snapshot.slots[i].draining) text += "  draining pid " + std::to_string(pid) + "\n";
    }

    if (!snapshot.listeners.empty()) {
        std::vector<Row> listener_rows;
        for (const ListenerStatus& listener : snapshot.listeners) listener_rows.push_back(listener_row(listener));
        text += "\n";
        for (const std::string& line :
             table_lines({"NAME", "ADDRESS", "MODE", "SLOT", "QUEUE", "BACKLOG"}, listener_rows, color)) {
            text += line + "\n";
        }
    }
    return text;
}

}  // namespace preforkctl::control
