#pragma once
// LineFramer: bytes in, whole lines out. Pure; memory bounded by max_line per stream.

#include <cstddef>
#include <string>
#include <string_view>

namespace preforkctl::logrelay {

/// One line without its '\n'. A line longer than max_line arrives in pieces: every piece after the
/// first has `continuation` set.
struct Line {
    std::string_view text;
    bool continuation = false;
};

class LineFramer {
public:
    explicit LineFramer(std::size_t max_line) : max_line_(max_line) {}

    /// Feeds bytes; calls emit(const Line&) for each complete line (or max_line piece).
    template <class Emit>
    void feed(std::string_view bytes, Emit&& emit);

    /// Emits the buffered unterminated line, if any, as a complete line (EOF, or worker death).
    template <class Emit>
    void flush(Emit&& emit);

    [[nodiscard]] bool has_partial() const { return !partial_.empty(); }

private:
    template <class Emit>
    void emit_piece(std::string_view text, Emit& emit) {
        emit(Line{text, continuing_});
    }

    std::size_t max_line_;
    std::string partial_;
    bool continuing_ = false;  // the next piece continues a line that was split at max_line
};

template <class Emit>
void LineFramer::feed(std::string_view bytes, Emit&& emit) {
    while (!bytes.empty()) {
        const std::size_t room = max_line_ - partial_.size();
        const std::size_t newline = bytes.substr(0, room + 1).find('\n');
        if (newline != std::string_view::npos) {
            const std::string_view head = bytes.substr(0, newline);
            if (partial_.empty()) {
                emit_piece(head, emit);  // the common case: no copy
            } else {
                partial_.append(head);
                emit_piece(partial_, emit);
                partial_.clear();
            }
            continuing_ = false;
            bytes.remove_prefix(newline + 1);
        } else if (bytes.size() >= room) {
            // No newline within the limit: emit max_line bytes as a piece; the rest continues it.
            partial_.append(bytes.substr(0, room));
            emit_piece(partial_, emit);
            partial_.clear();
            continuing_ = true;
            bytes.remove_prefix(room);
        } else {
            partial_.append(bytes);
            return;
        }
    }
}

template <class Emit>
void LineFramer::flush(Emit&& emit) {
    if (!partial_.empty()) {
        emit_piece(partial_, emit);
        partial_.clear();
    }
    continuing_ = false;
}

}  // namespace preforkctl::logrelay
