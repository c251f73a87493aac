#pragma once
// LineFramer: bytes in, whole lines out. Pure (time is a parameter); memory bounded by max_line per stream.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "logrelay/byte_buffer.hpp"

namespace preforkctl::logrelay {

using SteadyTime = std::chrono::steady_clock::time_point;

/// One line without its '\n'. A line longer than max_line, or one that waited too long for its newline,
/// arrives in pieces: every piece after the first has `continuation` set.
struct Line {
    std::string_view text;
    bool continuation = false;
};

class LineFramer {
public:
    explicit LineFramer(std::size_t max_line) : max_line_(max_line) {}

    /// Feeds bytes that arrived at `now`; calls emit(const Line&) for each complete line (or max_line piece).
    template <class Emit>
    void feed(std::string_view bytes, SteadyTime now, Emit&& emit);
    template <class Emit>
    void feed(std::string_view bytes, Emit&& emit) {
        feed(bytes, SteadyTime{}, emit);
    }

    /// feed() for a caller that can format whole runs of lines at once: bulk(std::string_view bytes) formats
    /// the complete lines (up to max_line bytes each) at the start of `bytes` and returns how many bytes it
    /// consumed; everything else (the end of a pending line, a max_line piece, a longer line) goes through
    /// emit(const Line&) as with feed(). The same lines as feed(), in the same order.
    template <class Bulk, class Emit>
    void feed_bulk(std::string_view bytes, SteadyTime now, Bulk&& bulk, Emit&& emit);

    /// feed_bulk() for output that is exactly prefix + line + '\n' (prefix format without timestamps, raw).
    void feed_prefixed(std::string_view bytes, SteadyTime now, std::string_view prefix,
                       std::string_view continuation_prefix, ByteBuffer& out) {
        feed_bulk(
            bytes, now, [&](std::string_view run) { return out.append_prefixed_lines(prefix, run, max_line_); },
            [&](const Line& line) { out.append_line(line.continuation ? continuation_prefix : prefix, line.text); });
    }

    [[nodiscard]] std::size_t max_line() const { return max_line_; }

    /// Emits the buffered unterminated line, if any, as a complete line (EOF, or worker death).
    template <class Emit>
    void flush(Emit&& emit);

    /// Emits the unterminated line if its first byte arrived at or before `cutoff`. What the worker writes
    /// next continues that line (marked as a continuation), so a slow line is shown, not held back.
    template <class Emit>
    void flush_if_waiting_since(SteadyTime cutoff, Emit&& emit);

    /// Restarts the wait of the unterminated line at `now`: the time it spent unread in a pipe that was
    /// deliberately not read (back-pressure) does not count against it.
    void restart_partial_clock(SteadyTime now) {
        if (!partial_.empty()) partial_since_ = now;
    }

    [[nodiscard]] bool has_partial() const { return !partial_.empty(); }
    /// The unterminated line so far, and whether it continues a line already emitted in part: what an upgrade
    /// hands the next image, which restore()s it.
    [[nodiscard]] const std::string& partial() const { return partial_; }
    [[nodiscard]] bool continuing() const { return continuing_; }
    void restore(std::string partial, bool continuing, SteadyTime now) {
        partial_ = std::move(partial);
        partial_since_ = now;
        continuing_ = continuing;
    }
    /// When the first byte of the buffered unterminated line arrived, if there is one.
    [[nodiscard]] std::optional<SteadyTime> partial_since() const {
        return partial_.empty() ? std::nullopt : std::optional<SteadyTime>(partial_since_);
    }

private:
    template <class Emit>
    void emit_piece(std::string_view text, Emit& emit) {
        // An empty continuation is what is left of a line whose start was already emitted at --max-line
        // or after the partial-line timeout: the newline alone carries nothing worth a line of its own.
        if (text.empty() && continuing_) return;
        emit(Line{text, continuing_});
    }

    void keep(std::string_view bytes, SteadyTime now) {
        if (partial_.empty()) partial_since_ = now;
        partial_.append(bytes);
    }

    std::size_t max_line_;
    std::string partial_;
    SteadyTime partial_since_{};
    bool continuing_ = false;  // the next piece continues a line that was already partly emitted
};

template <class Emit>
void LineFramer::feed(std::string_view bytes, SteadyTime now, Emit&& emit) {
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
            keep(bytes.substr(0, room), now);
            emit_piece(partial_, emit);
            partial_.clear();
            continuing_ = true;
            bytes.remove_prefix(room);
        } else {
            keep(bytes, now);
            return;
        }
    }
}

template <class Bulk, class Emit>
void LineFramer::feed_bulk(std::string_view bytes, SteadyTime now, Bulk&& bulk, Emit&& emit) {
    while (!bytes.empty()) {
        if (partial_.empty() && !continuing_) {
            bytes.remove_prefix(bulk(bytes));
            if (bytes.empty()) return;
        }
        // One piece the general way: the end of a pending line, a max_line piece of a long line, or the
        // unterminated tail (kept for later). Then the bulk copy can take over again.
        const std::size_t room = max_line_ - partial_.size();
        const std::size_t newline = bytes.substr(0, room + 1).find('\n');
        const std::size_t piece = newline != std::string_view::npos ? newline + 1 : std::min(bytes.size(), room);
        feed(bytes.substr(0, piece), now, emit);
        bytes.remove_prefix(piece);
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

template <class Emit>
void LineFramer::flush_if_waiting_since(SteadyTime cutoff, Emit&& emit) {
    if (partial_.empty() || partial_since_ > cutoff) return;
    emit_piece(partial_, emit);
    partial_.clear();
    continuing_ = true;
}

}  // namespace preforkctl::logrelay
