#include "logrelay/output.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>
#include <iterator>

namespace preforkctl::logrelay {

namespace {

// Length of the valid UTF-8 sequence at the start of `s`, or 0 when it is not valid.
std::size_t utf8_sequence_length(std::string_view s) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = byte(0);
    std::size_t length = 0;
    unsigned min_value = 0;
    unsigned value = 0;
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) { length = 2; value = lead & 0x1Fu; min_value = 0x80; }
    else if ((lead & 0xF0) == 0xE0) { length = 3; value = lead & 0x0Fu; min_value = 0x800; }
    else if ((lead & 0xF8) == 0xF0) { length = 4; value = lead & 0x07u; min_value = 0x10000; }
    else return 0;
    if (s.size() < length) return 0;
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80) return 0;
        value = (value << 6) | (byte(i) & 0x3Fu);
    }
    if (value < min_value || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
    return length;
}

const char* const kColors[] = {"\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m", "\033[91m"};
constexpr std::string_view kColorReset = "\033[0m";

}  // namespace

bool resolve_color(ColorChoice choice, const char* no_color, bool stdout_is_tty) {
    switch (choice) {
        case ColorChoice::always: return true;
        case ColorChoice::never: return false;
        case ColorChoice::automatic: break;
    }
    return (no_color == nullptr || *no_color == '\0') && stdout_is_tty;
}

std::string format_timestamp(std::chrono::system_clock::time_point when) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() % 1000;
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char text[48];
    std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    const int m = std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(millis));
    n += static_cast<std::size_t>(m > 0 ? m : 0);
    return std::string(text, n);
}

namespace {

template <class Out>
void append_json_text(Out& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    while (!text.empty()) {
        // Printable ASCII other than '"' and '\\' goes out as it is, a run at a time.
        std::size_t plain = 0;
        while (plain < text.size()) {
            const auto c = static_cast<unsigned char>(text[plain]);
            if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') break;
            ++plain;
        }
        if (plain > 0) {
            out.append(text.substr(0, plain));
            text.remove_prefix(plain);
            continue;
        }
        const auto c = static_cast<unsigned char>(text.front());
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        } else {
            const std::size_t length = utf8_sequence_length(text);
            if (length == 0) {
                out += "\\ufffd";
                text.remove_prefix(1);
                continue;
            }
            out.append(text.substr(0, length));
            text.remove_prefix(length);
            continue;
        }
        text.remove_prefix(1);
    }
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) { append_json_text(out, text); }

LineFormatter::LineFormatter(OutputOptions options) : options_(std::move(options)) {
    label_width_ = options_.name.size() + 1 + std::to_string(options_.slots > 0 ? options_.slots - 1 : 0).size();
}

LineFormatter::SlotText& LineFormatter::slot_text(int slot) {
    const auto index = static_cast<std::size_t>(slot);
    while (slots_.size() <= index) {
        const int number = static_cast<int>(slots_.size());
        SlotText text;
        std::string label = options_.name + "." + std::to_string(number);
        if (label.size() < label_width_) label.append(label_width_ - label.size(), ' ');
        const std::string color = options_.color ? kColors[slots_.size() % std::size(kColors)] : "";
        const std::string reset = options_.color ? std::string(kColorReset) : "";
        // '|' starts a line; '+' marks the continuation of a line split at --max-line or by the timeout.
        text.line_prefix = color + label + " | " + reset;
        text.continuation_prefix = color + label + " + " + reset;
        text.json_slot = ",\"slot\":" + std::to_string(number);
        slots_.push_back(std::move(text));
    }
    return slots_[index];
}

void LineFormatter::append(ByteBuffer& out, int slot, Stream stream, int pid, const Line& line,
                           std::string_view timestamp) {
    switch (options_.format) {
        case Format::prefix: {
            const SlotText& text = slot_text(slot);
            if (options_.timestamps) {
                out.append(timestamp);
                out += ' ';
            }
            out.append_line(line.continuation ? text.continuation_prefix : text.line_prefix, line.text);
            break;
        }
        case Format::json: {
            const SlotText& text = slot_text(slot);
            out += "{\"ts\":\"";
            out.append(timestamp);
            out += '"';
            out.append(text.json_slot);
            out += ",\"pid\":";
            char digits[16];
            const auto [end, error] = std::to_chars(std::begin(digits), std::end(digits), pid);
            out.append(digits, error == std::errc() ? static_cast<std::size_t>(end - digits) : 0);
            out += stream == Stream::out ? ",\"stream\":\"stdout\"" : ",\"stream\":\"stderr\"";
            if (line.continuation) out += ",\"continuation\":true";
            out += ",\"line\":\"";
            append_json_text(out, line.text);
            out += "\"}\n";
            break;
        }
        case Format::raw:
            out.append_line({}, line.text);
            break;
    }
}

}  // namespace preforkctl::logrelay
