#include "logrelay/output.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>

namespace preforkctl::logrelay {

namespace {

constexpr std::size_t kFlushThreshold = 64 * 1024;

void append_timestamp(std::string& out) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char text[40];
    const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    out.append(text, n);
    char frac[8];
    const int m = std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(millis));
    out.append(frac, static_cast<std::size_t>(m));
}

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

void write_all(int fd, std::string& buffer) {
    std::size_t done = 0;
    while (done < buffer.size()) {
        const ssize_t n = ::write(fd, buffer.data() + done, buffer.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;  // EPIPE or a closed stdout: the lines have nowhere to go
        }
        done += static_cast<std::size_t>(n);
    }
    buffer.clear();
}

const char* const kColors[] = {"\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m", "\033[91m"};

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    while (!text.empty()) {
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
        } else if (c >= 0x80) {
            const std::size_t length = utf8_sequence_length(text);
            if (length == 0) {
                out += "\\ufffd";
                text.remove_prefix(1);
                continue;
            }
            out.append(text.substr(0, length));
            text.remove_prefix(length);
            continue;
        } else {
            out += static_cast<char>(c);
        }
        text.remove_prefix(1);
    }
}

Output::Output(OutputOptions options, int out_fd, int err_fd)
    : options_(std::move(options)), out_fd_(out_fd), err_fd_(err_fd) {
    label_width_ = options_.name.size() + 1 + std::to_string(options_.slots > 0 ? options_.slots - 1 : 0).size();
}

void Output::add_prefix(std::string& out, int slot, const Line& line) const {
    if (options_.timestamps) {
        append_timestamp(out);
        out += ' ';
    }
    if (options_.color) {
        out += kColors[static_cast<std::size_t>(slot) % std::size(kColors)];
    }
    const std::size_t start = out.size();
    out += options_.name;
    out += '.';
    out += std::to_string(slot);
    if (out.size() - start < label_width_) {
        out.append(label_width_ - (out.size() - start), ' ');
    }
    // '|' starts a line; '+' marks the continuation of a line split at --max-line.
    out += line.continuation ? " + " : " | ";
    if (options_.color) {
        out += "\033[0m";
    }
    out.append(line.text);
    out += '\n';
}

void Output::add_json(std::string& out, int slot, int pid, Stream stream, const Line& line) const {
    out += "{\"ts\":\"";
    append_timestamp(out);
    out += "\",\"slot\":";
    out += std::to_string(slot);
    out += ",\"pid\":";
    out += std::to_string(pid);
    out += stream == Stream::out ? ",\"stream\":\"stdout\"" : ",\"stream\":\"stderr\"";
    if (line.continuation) {
        out += ",\"continuation\":true";
    }
    out += ",\"line\":\"";
    append_json_string(out, line.text);
    out += "\"}\n";
}

void Output::add(int slot, int pid, Stream stream, const Line& line) {
    std::string& out = stream == Stream::out ? out_buffer_ : err_buffer_;
    switch (options_.format) {
        case Format::prefix: add_prefix(out, slot, line); break;
        case Format::json: add_json(out, slot, pid, stream, line); break;
        case Format::raw:
            out.append(line.text);
            out += '\n';
            break;
    }
    if (out.size() >= kFlushThreshold) {
        write_all(stream == Stream::out ? out_fd_ : err_fd_, out);
    }
}

void Output::flush() {
    if (!out_buffer_.empty()) write_all(out_fd_, out_buffer_);
    if (!err_buffer_.empty()) write_all(err_fd_, err_buffer_);
}

}  // namespace preforkctl::logrelay
