#pragma once
// LineFormatter: turns worker lines into output text (prefix / json / raw). Pure apart from reading the
// clock's calendar conversion; no descriptors.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "logrelay/byte_buffer.hpp"
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
    bool color = false;       // already resolved: see resolve_color
};

/// Colour rule of §8: `always` and `never` win; `automatic` colours only a terminal, and never when
/// NO_COLOR is set to a non-empty value (no-color.org). `no_color` is getenv("NO_COLOR"), maybe null.
bool resolve_color(ColorChoice choice, const char* no_color, bool stdout_is_tty);

/// Appends `text` as a JSON string body: escapes quotes, backslashes and control bytes; each byte that is
/// not part of valid UTF-8 becomes U+FFFD.
void append_json_string(std::string& out, std::string_view text);

/// "2026-11-22T21:30:00.123Z": the UTC timestamp of prefix (--timestamps) and json lines.
std::string format_timestamp(std::chrono::system_clock::time_point when);

/// Formats worker lines. Per-slot prefixes are built once, so a line costs three appends.
class LineFormatter {
public:
    explicit LineFormatter(OutputOptions options);

    /// Appends one formatted line (with its '\n') to `out`. `pid` is the worker that wrote it (json "pid",
    /// 0 when unknown). `timestamp` is format_timestamp() of the moment the line's bytes were read; it is
    /// used by json and by --timestamps only.
    void append(ByteBuffer& out, int slot, Stream stream, int pid, const Line& line, std::string_view timestamp);

    /// The prefixes of `slot` ("NAME.SLOT | " and "NAME.SLOT + "), for a caller that appends many lines
    /// of one slot in plain prefix format (no timestamps): see plain_prefix().
    [[nodiscard]] std::pair<std::string_view, std::string_view> prefixes(int slot) {
        if (options_.format == Format::raw) return {};
        const SlotText& text = slot_text(slot);
        return {text.line_prefix, text.continuation_prefix};
    }
    /// True when a line is exactly prefix + text + '\n' (prefix or raw format, no timestamps).
    [[nodiscard]] bool plain_prefix() const {
        return options_.format == Format::raw || (options_.format == Format::prefix && !options_.timestamps);
    }

    [[nodiscard]] bool wants_timestamp() const {
        return options_.format == Format::json || (options_.format == Format::prefix && options_.timestamps);
    }

private:
    struct SlotText {
        std::string line_prefix;          // "NAME.SLOT | " (with colour codes)
        std::string continuation_prefix;  // "NAME.SLOT + "
        std::string json_slot;            // ,"slot":N
    };
    SlotText& slot_text(int slot);

    OutputOptions options_;
    std::size_t label_width_;
    std::vector<SlotText> slots_;
};

}  // namespace preforkctl::logrelay
