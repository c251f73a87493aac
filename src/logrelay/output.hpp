#pragma once
// Output: formats worker lines (prefix / json / raw) and writes them whole to preforkctl's stdout/stderr.

#include <cstddef>
#include <string>
#include <string_view>

#include "logrelay/line_framer.hpp"

namespace preforkctl::logrelay {

enum class Stream { out, err };
enum class Format { prefix, json, raw };

struct OutputOptions {
    Format format = Format::prefix;
    std::string name;         // NAME of "NAME.SLOT | "
    int slots = 1;            // widest slot number decides the padding
    bool timestamps = false;
    bool color = false;       // already resolved: tty, NO_COLOR and --color
};

/// Appends `text` as a JSON string body: escapes quotes, backslashes and control bytes; each byte that is
/// not part of valid UTF-8 becomes U+FFFD.
void append_json_string(std::string& out, std::string_view text);

/// Buffers formatted lines per stream and writes them with whole-line write() calls.
class Output {
public:
    Output(OutputOptions options, int out_fd = 1, int err_fd = 2);

    /// Formats one worker line into the stream's buffer.
    void add(int slot, int pid, Stream stream, const Line& line);

    /// Writes everything buffered (blocking until written; lines are never torn).
    void flush();

private:
    void add_prefix(std::string& out, int slot, const Line& line) const;
    void add_json(std::string& out, int slot, int pid, Stream stream, const Line& line) const;

    OutputOptions options_;
    int out_fd_;
    int err_fd_;
    std::size_t label_width_;
    std::string out_buffer_;
    std::string err_buffer_;
};

}  // namespace preforkctl::logrelay
