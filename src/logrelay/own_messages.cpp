#include "logrelay/own_messages.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <unistd.h>

#include "logrelay/json_text.hpp"
#include "logrelay/output.hpp"

namespace preforkctl::logrelay {

void append_own_message(std::string& out, OwnFormat format, std::string_view timestamp, int pid,
                        std::string_view level, std::string_view text) {
    if (format == OwnFormat::text) {
        out += "preforkctl: ";
        out += level;
        out += ": ";
        out += text;
        out += '\n';
        return;
    }
    // The field names of worker lines where they mean the same; "source" and "level" are ours alone, and
    // escaping keeps a message with a newline in it one line.
    out += "{\"ts\":\"";
    append_json_string(out, timestamp);
    out += "\",\"source\":\"preforkctl\",\"pid\":";
    out += std::to_string(pid);
    out += ",\"stream\":\"stderr\",\"level\":\"";
    append_json_string(out, level);
    out += "\",\"line\":\"";
    append_json_string(out, text);
    out += "\"}\n";
}

namespace {

class OwnMessageFormatter final : public spdlog::formatter {
public:
    explicit OwnMessageFormatter(OwnFormat format) : format_(format) {}

    void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& dest) override {
        std::string line;
        const std::string timestamp = format_ == OwnFormat::json ? format_timestamp(message.time) : std::string();
        const auto level = spdlog::level::to_string_view(message.level);
        append_own_message(line, format_, timestamp, static_cast<int>(::getpid()),
                           std::string_view(level.data(), level.size()),
                           std::string_view(message.payload.data(), message.payload.size()));
        dest.append(line.data(), line.data() + line.size());
    }

    [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<OwnMessageFormatter>(format_);
    }

private:
    OwnFormat format_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> own_message_formatter(OwnFormat format) {
    return std::make_unique<OwnMessageFormatter>(format);
}

}  // namespace preforkctl::logrelay
