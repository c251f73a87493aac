#pragma once
// OverflowGate: what to do when worker lines arrive faster than preforkctl's stdout/stderr takes them.
// Pure: it sees byte counts, never descriptors.

#include <cstddef>
#include <cstdint>

namespace preforkctl::logrelay {

enum class OverflowPolicy { block, drop };

/// The decisions for one output stream, given how many bytes are queued for it and not yet written.
class OverflowGate {
public:
    OverflowGate(OverflowPolicy policy, std::size_t bound) : policy_(policy), bound_(bound) {}

    /// Whether a formatted worker line of `bytes` may be queued behind `queued` bytes. `block` always
    /// admits (reading stops instead, see should_pause); `drop` refuses a line that would pass the bound,
    /// except into an empty queue (a single line larger than the bound still gets through, whole).
    [[nodiscard]] bool admit(std::size_t queued, std::size_t bytes) const {
        return policy_ == OverflowPolicy::block || queued == 0 || queued + bytes <= bound_;
    }

    /// `block`: stop reading the workers' pipes once the queue has reached the bound...
    [[nodiscard]] bool should_pause(std::size_t queued) const {
        return policy_ == OverflowPolicy::block && queued >= bound_;
    }
    /// ...and read again once it has drained to half of it (hysteresis: no pause/resume flapping per line).
    [[nodiscard]] bool may_resume(std::size_t queued) const { return queued <= bound_ / 2; }

    /// Counts a line that was not admitted.
    void count_dropped() { ++dropped_unreported_; }

    /// The number of lines dropped since the last report, to be reported now: once the queue is empty (the
    /// report then comes right after the gap it explains), or at any time when `final` (at exit). 0 = none.
    std::uint64_t take_report(std::size_t queued, bool final = false) {
        if (dropped_unreported_ == 0 || (queued > 0 && !final)) return 0;
        const std::uint64_t count = dropped_unreported_;
        dropped_unreported_ = 0;
        dropped_total_ += count;
        return count;
    }

    [[nodiscard]] std::uint64_t dropped_total() const { return dropped_total_ + dropped_unreported_; }
    [[nodiscard]] std::size_t bound() const { return bound_; }
    [[nodiscard]] OverflowPolicy policy() const { return policy_; }

private:
    OverflowPolicy policy_;
    std::size_t bound_;
    std::uint64_t dropped_unreported_ = 0;
    std::uint64_t dropped_total_ = 0;
};

}  // namespace preforkctl::logrelay
