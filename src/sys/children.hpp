#pragma once
// What is left of this process's children: the re-parented orphans a supervisor must not leave behind.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <set>
#include <vector>

namespace preforkctl::sys {

/// True while this process has any child, running or not yet reaped (waitid with WNOWAIT: reaps nothing).
bool has_children();

/// Pids of this process's children, from /proc; nullopt when /proc does not show this process
/// (e.g. a PID namespace without its own /proc mount).
std::optional<std::vector<pid_t>> child_pids();

/// Those of `pids` that have open the pipe that is this process's stdout or stderr (the reader of a shell's
/// `exec > >(tee log)`, for one). Empty when neither is a pipe, or without /proc.
std::vector<pid_t> sharing_output_pipe(const std::vector<pid_t>& pids);

/// Points stdout and stderr at /dev/null, so that children reading what this process wrote there see its
/// end, then reaps children until every one of `readers` is reaped or `limit` has passed. For a PID 1,
/// whose exit kills every other process of its namespace at once.
void let_output_readers_finish(std::set<pid_t> readers, std::chrono::milliseconds limit);

}  // namespace preforkctl::sys
