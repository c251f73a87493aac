#pragma once
// ByteBuffer: a growable byte array for the output hot path. Unlike std::string it never zero-fills and
// appends a whole formatted line (prefix, text, newline) after one capacity check.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace preforkctl::logrelay {

class ByteBuffer {
public:
    ByteBuffer() = default;
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;
    ByteBuffer(ByteBuffer&& other) noexcept { swap(other); }
    ByteBuffer& operator=(ByteBuffer&& other) noexcept {
        swap(other);
        return *this;
    }

    [[nodiscard]] const char* data() const { return data_.get(); }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }
    [[nodiscard]] std::string_view view() const { return {data_.get(), size_}; }
    void clear() { size_ = 0; }
    /// Shrinks to `size` bytes (to take back a line that was just appended).
    void truncate(std::size_t size) { size_ = size < size_ ? size : size_; }
    /// Gives the memory back when it grew far beyond what is in use (after a burst).
    void release_if_larger_than(std::size_t limit) {
        if (size_ == 0 && capacity_ > limit) {
            data_.reset();
            capacity_ = 0;
        }
    }

    void append(const char* bytes, std::size_t n) {
        if (n == 0) return;  // bytes may be null then, which memcpy does not allow
        reserve_more(n);
        std::memcpy(data_.get() + size_, bytes, n);
        size_ += n;
    }
    void append(std::string_view text) { append(text.data(), text.size()); }
    ByteBuffer& operator+=(std::string_view text) {
        append(text);
        return *this;
    }
    ByteBuffer& operator+=(char c) {
        reserve_more(1);
        data_[size_++] = c;
        return *this;
    }
    /// prefix + text + '\n' with one capacity check: the cost of a relayed line.
    void append_line(std::string_view prefix, std::string_view text) {
        reserve_more(prefix.size() + text.size() + 1);
        char* at = data_.get() + size_;
        if (!prefix.empty()) std::memcpy(at, prefix.data(), prefix.size());
        if (!text.empty()) std::memcpy(at + prefix.size(), text.data(), text.size());
        at[prefix.size() + text.size()] = '\n';
        size_ += prefix.size() + text.size() + 1;
    }

    /// a + b + c with one capacity check: a json line (prefix, text, suffix).
    void append_parts(std::string_view a, std::string_view b, std::string_view c) {
        reserve_more(a.size() + b.size() + c.size());
        char* at = data_.get() + size_;
        if (!a.empty()) std::memcpy(at, a.data(), a.size());
        if (!b.empty()) std::memcpy(at + a.size(), b.data(), b.size());
        if (!c.empty()) std::memcpy(at + a.size() + b.size(), c.data(), c.size());
        size_ += a.size() + b.size() + c.size();
    }

#if defined(__SSE2__)
    /// append_parts for the hot path: each part is copied in whole 16-byte blocks, so this reads up to 15
    /// bytes past the end of each part (the caller guarantees they are readable) and writes up to 15 bytes
    /// past its end (slack that the capacity check leaves and the next append overwrites).
    void append_parts_in_blocks(std::string_view a, std::string_view b, std::string_view c) {
        if (capacity_ - size_ < a.size() + b.size() + c.size() + 16) reserve_more(a.size() + b.size() + c.size() + 16);
        char* at = data_.get() + size_;
        for (const std::string_view part : {a, b, c}) {
            for (std::size_t i = 0; i < part.size(); i += 16) {
                _mm_storeu_si128(reinterpret_cast<__m128i*>(at + i),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(part.data() + i)));
            }
            at += part.size();
        }
        size_ += a.size() + b.size() + c.size();
    }
#endif

    /// The bulk form of append_line: for each complete line at the start of `bytes` (up to and including its
    /// '\n') that has at most `max_line` bytes before the '\n', appends prefix + line. Stops before the
    /// first line that is unterminated or longer; returns the number of bytes of `bytes` consumed and adds
    /// the number of lines appended to `lines`.
    std::size_t append_prefixed_lines(std::string_view prefix, std::string_view bytes, std::size_t max_line,
                                      std::size_t& lines);
    std::size_t append_prefixed_lines(std::string_view prefix, std::string_view bytes, std::size_t max_line) {
        std::size_t lines = 0;
        return append_prefixed_lines(prefix, bytes, max_line, lines);
    }

    void swap(ByteBuffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
        std::swap(capacity_, other.capacity_);
    }

private:
    void reserve_more(std::size_t n) {
        if (capacity_ - size_ >= n) return;
        std::size_t capacity = capacity_ == 0 ? 64 * 1024 : capacity_ * 2;
        while (capacity - size_ < n) capacity *= 2;
        auto grown = std::make_unique_for_overwrite<char[]>(capacity);
        if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
        data_ = std::move(grown);
        capacity_ = capacity;
    }

    // Copies one line (prefix, then `length` bytes from `line`, ending with its '\n'). With `wide`, both go
    // in 16-byte blocks: the prefix is one store (it fits), the line is copied in whole blocks, which
    // reads up to 15 bytes past the line (the caller guarantees they are inside its input) and writes
    // up to 15 bytes past it (slack that the capacity check below leaves and the next line overwrites).
    template <bool wide>
    void put_line(std::string_view prefix, const char* line, std::size_t length, const char* prefix16) {
        if (capacity_ - size_ < prefix.size() + length + 32) reserve_more(prefix.size() + length + 32);
        char* at = data_.get() + size_;
#if defined(__SSE2__)
        if constexpr (wide) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(at),
                             _mm_loadu_si128(reinterpret_cast<const __m128i*>(prefix16)));
            at += prefix.size();
            for (std::size_t i = 0; i < length; i += 16) {
                _mm_storeu_si128(reinterpret_cast<__m128i*>(at + i),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(line + i)));
            }
            size_ += prefix.size() + length;
            return;
        }
#endif
        (void)prefix16;
        if (!prefix.empty()) std::memcpy(at, prefix.data(), prefix.size());
        std::memcpy(at + prefix.size(), line, length);
        size_ += prefix.size() + length;
    }

    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

inline std::size_t ByteBuffer::append_prefixed_lines(std::string_view prefix, std::string_view bytes,
                                                     std::size_t max_line, std::size_t& lines) {
    const char* const begin = bytes.data();
    const char* const end = begin + bytes.size();
    const char* line = begin;     // start of the next line to copy
    const char* scanned = begin;  // newlines before this point have been found
    // Counted in a local: `lines` could alias the bytes written, which would force a store per line.
    std::size_t count = 0;
    const auto consumed = [&] {
        lines += count;
        return static_cast<std::size_t>(line - begin);
    };
#if defined(__SSE2__)
    // Newlines are found 64 bytes at a time (four SSE2 compares into one bit mask), which costs less per
    // line than a memchr call per line when lines are short, as log lines are.
    if (prefix.size() <= 16) {
        alignas(16) char prefix16[16] = {};
        if (!prefix.empty()) std::memcpy(prefix16, prefix.data(), prefix.size());
        const __m128i newline = _mm_set1_epi8('\n');
        for (; end - scanned >= 64; scanned += 64) {
            std::uint64_t mask = 0;
            for (int i = 0; i < 4; ++i) {
                const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scanned + 16 * i));
                mask |= static_cast<std::uint64_t>(
                            static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(block, newline))))
                        << (16 * i);
            }
            for (; mask != 0; mask &= mask - 1) {
                const char* at = scanned + __builtin_ctzll(mask);
                const auto length = static_cast<std::size_t>(at + 1 - line);
                if (length > max_line + 1) return consumed();
                if (end - at > 16) {
                    put_line<true>(prefix, line, length, prefix16);
                } else {
                    put_line<false>(prefix, line, length, prefix16);
                }
                line = at + 1;
                ++count;
            }
            if (static_cast<std::size_t>(scanned + 64 - line) > max_line + 1) {
                return consumed();  // a line too long for this path
            }
        }
    }
#endif
    if (scanned < line) scanned = line;
    while (scanned != end) {
        const auto pending = static_cast<std::size_t>(scanned - line);  // bytes of this line without '\n'
        const std::size_t window = std::min(static_cast<std::size_t>(end - scanned), max_line + 1 - pending);
        const void* found = std::memchr(scanned, '\n', window);
        if (found == nullptr) break;
        const char* at = static_cast<const char*>(found);
        put_line<false>(prefix, line, static_cast<std::size_t>(at + 1 - line), nullptr);
        line = scanned = at + 1;
        ++count;
    }
    return consumed();
}

}  // namespace preforkctl::logrelay
