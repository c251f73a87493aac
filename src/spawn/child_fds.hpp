#pragma once
// The child side's descriptor work between clone and execve: async-signal-safe calls only, no allocation.

#include "spawn/launch.hpp"

namespace preforkctl::spawn {

/// What a child that failed before execve writes to its report pipe: the stage and its errno.
struct ChildReport {
    int stage;
    int error;
};

/// Writes {stage, errno} to `report_fd` and exits with 127; the parent reads it as the failed step.
[[noreturn]] void fail_in_child(int report_fd, LaunchStage stage);

/// The report pipe `report_fd` moved to `floor` or above, out of the way of fds 0..floor-1. When it cannot
/// move, the failure is reported on the pipe where it is and the child exits.
int lift_report_fd(int report_fd, int floor);

/// Marks every open descriptor from `first` up close-on-exec, whatever the descriptor limit:
/// close_range(CLOSE_RANGE_CLOEXEC) where the kernel has it (5.11), else each descriptor listed in
/// /proc/self/fd, else every number below the RLIMIT_NOFILE hard limit.
void close_on_exec_from(int first);

}  // namespace preforkctl::spawn
