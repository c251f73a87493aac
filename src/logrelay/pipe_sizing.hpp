#pragma once
// PipeSizing: how large a slot's pipe should be. Pure: it sees byte counts, never descriptors.
//
// A bigger pipe means fewer, larger reads and fewer wake-ups of a worker that waits for room (measured: about
// 10-15% less relay CPU per GB with 1 MiB instead of 256 KiB). But every pipe's capacity counts against the
// user's fs.pipe-user-pages-soft (64 MiB by default), past which the kernel gives every new pipe of that
// user, the workers' own included, a single page. So pipes start at the kernel's default and only a pipe that
// was found full grows, within one budget for all of preforkctl's pipes.

#include <cstddef>

namespace preforkctl::logrelay {

/// The largest pipe we ask for: the default fs.pipe-max-size, the limit for unprivileged processes.
inline constexpr std::size_t kMaxPipeCapacity = 1024 * 1024;
/// The most all slot pipes together may grow to beyond their initial capacity.
inline constexpr std::size_t kPipeGrowthBudget = 16 * 1024 * 1024;

/// The capacity a pipe of `capacity` bytes should get after one read returned `read` bytes: a read that
/// took a whole pipe's worth means the writer was waiting for room, so the pipe grows fourfold (up to
/// kMaxPipeCapacity) if `budget_left` covers the growth; otherwise it stays as it is.
[[nodiscard]] constexpr std::size_t next_pipe_capacity(std::size_t capacity, std::size_t read,
                                                       std::size_t budget_left) {
    if (capacity == 0 || read < capacity || capacity >= kMaxPipeCapacity) return capacity;
    const std::size_t wanted = capacity * 4 < kMaxPipeCapacity ? capacity * 4 : kMaxPipeCapacity;
    return wanted - capacity <= budget_left ? wanted : capacity;
}

}  // namespace preforkctl::logrelay
