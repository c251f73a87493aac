#pragma once
// ByteBuffer: a growable byte array for the output hot path. Unlike std::string it never zero-fills and
// appends a whole formatted line (prefix, text, newline) after one capacity check.

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

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

    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace preforkctl::logrelay
