#include "logrelay/output.hpp"

#include <cstdio>
#include <ctime>
#include <iterator>

namespace preforkctl::logrelay {

namespace {

const char* const kColors[] = {"\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m", "\033[91m"};
constexpr std::string_view kColorReset = "\033[0m";

}  // namespace

bool resolve_color(ColorChoice choice, const char* no_color, bool is_tty) {
    switch (choice) {
        case ColorChoice::always: return true;
        case ColorChoice::never: return false;
        case ColorChoice::automatic: break;
    }
    return (no_color == nullptr || *no_color == '\0') && is_tty;
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

LineFormatter::LineFormatter(OutputOptions options) : options_(std::move(options)) {
    label_width_ = options_.name.size() + 1 + std::to_string(options_.slots > 0 ? options_.slots - 1 : 0).size();
}

LineFormatter::StreamText& LineFormatter::stream_text(int slot, Stream stream) {
    const auto index = static_cast<std::size_t>(slot);
    while (slots_.size() <= index) {
        const std::size_t number = slots_.size();
        std::string label = options_.name + "." + std::to_string(number);
        if (label.size() < label_width_) label.append(label_width_ - label.size(), ' ');
        std::array<StreamText, 2> texts;
        for (const Stream which : {Stream::out, Stream::err}) {
            const bool color = which == Stream::out ? options_.color_out : options_.color_err;
            const std::string start = color ? kColors[number % std::size(kColors)] : "";
            const std::string reset = color ? std::string(kColorReset) : "";
            StreamText& text = texts[which == Stream::out ? 0 : 1];
            // '|' starts a line; '+' marks the continuation of a line split at --max-line or by the timeout.
            text.line_label = start + label + " | " + reset;
            text.continuation_label = start + label + " + " + reset;
        }
        slots_.push_back(std::move(texts));
    }
    return slots_[index][stream == Stream::out ? 0 : 1];
}

LineStyle LineFormatter::style(int slot, Stream stream, int pid, std::string_view timestamp) {
    if (options_.format == Format::raw) return LineStyle{{}, {}, "\n", false};
    StreamText& text = stream_text(slot, stream);
    if (options_.format == Format::prefix) {
        if (!options_.timestamps) return LineStyle{text.line_label, text.continuation_label, "\n", false};
        if (text.prefix.empty() || text.timestamp != timestamp) {
            text.timestamp = timestamp;
            text.prefix = text.timestamp + ' ' + text.line_label;
            text.continuation_prefix = text.timestamp + ' ' + text.continuation_label;
        }
        return LineStyle{text.prefix, text.continuation_prefix, "\n", false};
    }
    if (text.prefix.empty() || text.pid != pid || text.timestamp != timestamp) {
        text.pid = pid;
        text.timestamp = timestamp;
        std::string head = "{\"ts\":\"";
        append_json_string(head, timestamp);
        head += "\",\"slot\":" + std::to_string(slot) + ",\"pid\":" + std::to_string(pid);
        head += stream == Stream::out ? ",\"stream\":\"stdout\"" : ",\"stream\":\"stderr\"";
        text.prefix = head + ",\"line\":\"";
        text.continuation_prefix = head + ",\"continuation\":true,\"line\":\"";
    }
    return LineStyle{text.prefix, text.continuation_prefix, "\"}\n", true};
}

}  // namespace preforkctl::logrelay
