#pragma once
// The system side of `ctl upgrade` (SPEC §14): the state travels in a memfd, the new image is tried on a copy
// of it first, and then replaces this one with execve (same pid, the kept descriptors stay open).

#include <string>
#include <string_view>
#include <vector>

#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::sys {

/// A close-on-exec memfd holding `bytes`, its offset at 0.
Result<Fd> write_memfd(std::string_view bytes);

/// Everything in `fd` from offset 0 (a memfd handed over).
Result<std::string> read_whole_fd(int fd);

/// The check-only run of the new image, started: its pid and the read end of its stdout and stderr.
struct CheckChild {
    int pid = -1;
    Fd output;  // non-blocking, close-on-exec
};

/// Starts `argv` (argv[0] the executable's path) with `keep` inherited at their numbers, stdin from
/// /dev/null, stdout and stderr into one pipe, and no signal blocked. The caller reaps it.
Result<CheckChild> start_check(const std::vector<std::string>& argv, const std::vector<int>& keep);

/// Clears close-on-exec on `keep` and replaces this image by `argv[0]` with `argv` and the current
/// environment. Returns only when execve failed: close-on-exec is set again and the error says why.
Error exec_keeping(const std::vector<std::string>& argv, const std::vector<int>& keep);

/// The absolute path of the running executable (what /proc/self/exe names now), "" when unknown.
std::string own_executable();

/// CLOCK_MONOTONIC in nanoseconds: comparable across execve, unlike a steady_clock of one image.
std::int64_t monotonic_ns();

}  // namespace preforkctl::sys
