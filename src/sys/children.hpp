#pragma once
// What is left of this process's children: the re-parented orphans a supervisor must not leave behind.

#include <sys/types.h>

#include <optional>
#include <vector>

namespace preforkctl::sys {

/// True while this process has any child, running or not yet reaped (waitid with WNOWAIT: reaps nothing).
bool has_children();

/// Pids of this process's children, from /proc; nullopt when /proc does not show this process
/// (e.g. a PID namespace without its own /proc mount).
std::optional<std::vector<pid_t>> child_pids();

}  // namespace preforkctl::sys
