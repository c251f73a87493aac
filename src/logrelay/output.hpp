#pragma once
// LineFormatter: turns worker lines into output text (prefix / json / raw). Pure apart from reading the
// clock's calendar conversion; no descriptors.

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "logrelay/byte_buffer.hpp"
#include "logrelay/json_text.hpp"
#include "logrelay/line_framer.hpp"

namespace preforkctl::logrelay {

enum class Stream { out, err };
enum class Format { prefix, json, raw };
enum class ColorChoice { automatic, always, never };

struct OutputOptions {
    Format format = Format::prefix;
    std::string name;         // NAME of "NAME.SLOT | "
    int slots = 1;            // widest slot number decides the padding
    bool timestamps = false;
    bool color_out = false;   // colour the labels of stdout lines; already resolved: see resolve_color
    bool color_err = false;   // ... and of stderr lines (each stream is a terminal or not by itself)
};

/// Colour rule of §8 for one output stream: `always` and `never` win; `automatic` colours only a terminal,
/// and never when NO_COLOR is set to a non-empty value (no-color.org). `no_color` is getenv("NO_COLOR").
bool resolve_color(ColorChoice choice, const char* no_color, bool is_tty);

/// "2026-11-22T21:30:00.123Z": the UTC timestamp of prefix (--timestamps) and json lines.
std::string format_timestamp(std::chrono::system_clock::time_point when);

/// How every line of one slot's stream is written at the moment: prefix + text + suffix, the text escaped
/// as a JSON string body when `json`. The views stay valid until the formatter's next style() call.
struct LineStyle {
    std::string_view prefix;               // "NAME.SLOT | ", "TS NAME.SLOT | ", {"ts":...,"line":" or ""
    std::string_view continuation_prefix;  // the same for the continuation of a split line
    std::string_view suffix;               // "\n" or "\"}\n"
    bool json = false;
};

/// Appends one line in `style`.
inline void append_styled(ByteBuffer& out, const LineStyle& style, const Line& line) {
    const std::string_view prefix = line.continuation ? style.continuation_prefix : style.prefix;
    if (style.json) {
        out.append(prefix);
        append_json_string(out, line.text);
        out.append(style.suffix);
    } else {
        out.append_line(prefix, line.text);  // suffix is "\n"
    }
}

/// The bulk form of append_styled for every complete line at the start of `bytes` of at most `max_line`
/// bytes (see ByteBuffer::append_prefixed_lines); returns the number of bytes consumed and adds the number
/// of lines appended to `lines`.
inline std::size_t append_styled_lines(ByteBuffer& out, const LineStyle& style, std::string_view bytes,
                                       std::size_t max_line, std::size_t& lines) {
    return style.json ? append_json_lines(out, style.prefix, style.suffix, bytes, max_line, lines)
                      : out.append_prefixed_lines(style.prefix, bytes, max_line, lines);
}
inline std::size_t append_styled_lines(ByteBuffer& out, const LineStyle& style, std::string_view bytes,
                                       std::size_t max_line) {
    std::size_t lines = 0;
    return append_styled_lines(out, style, bytes, max_line, lines);
}

/// Formats worker lines. The constant part of each slot's lines is built once per slot, stream, worker and
/// timestamp, so that a line costs a few copies.
class LineFormatter {
public:
    explicit LineFormatter(OutputOptions options);

    /// The style of lines that worker `pid` (json "pid", 0 when unknown) wrote to `stream` of `slot`.
    /// `timestamp` is format_timestamp() of the moment the line's bytes were read; it is used by json and
    /// by --timestamps only.
    LineStyle style(int slot, Stream stream, int pid, std::string_view timestamp);

    /// Appends one formatted line (with its '\n') to `out`: append_styled with style().
    void append(ByteBuffer& out, int slot, Stream stream, int pid, const Line& line, std::string_view timestamp) {
        append_styled(out, style(slot, stream, pid, timestamp), line);
    }

    [[nodiscard]] bool wants_timestamp() const {
        return options_.format == Format::json || (options_.format == Format::prefix && options_.timestamps);
    }

private:
    // One stream of one slot: its label and the prefixes last built from it.
    struct StreamText {
        std::string line_label;          // "NAME.SLOT | " (with colour codes)
        std::string continuation_label;  // "NAME.SLOT + "
        std::string prefix;              // what style() returns, for `pid` and `timestamp`
        std::string continuation_prefix;
        int pid = -1;
        std::string timestamp;
    };
    StreamText& stream_text(int slot, Stream stream);

    OutputOptions options_;
    std::size_t label_width_;
    std::vector<std::array<StreamText, 2>> slots_;
};

}  // namespace preforkctl::logrelay
