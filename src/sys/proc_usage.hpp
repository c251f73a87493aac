#pragma once
// Memory and CPU of process trees, read from /proc/<pid>/stat: what `ctl status`, the metrics and --max-rss
// need about each worker and everything it started.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkctl::sys {

/// The fields of one /proc/<pid>/stat line that the tree sums need (proc(5) fields 1-4, 14, 15, 24).
struct ProcStat {
    int pid = 0;
    char state = '?';  // R, S, D, Z, ...
    int ppid = 0;
    std::uint64_t utime_ticks = 0;  // clock ticks (CLK_TCK)
    std::uint64_t stime_ticks = 0;
    std::uint64_t reaped_children_ticks = 0;  // cutime + cstime: the CPU of the children it has waited for
    std::uint64_t rss_pages = 0;
    int threads = 1;
};

/// Memory and CPU of a process and all its live descendants. Like ps(1), RSS counts a page shared by
/// several processes (fork's copy-on-write, shared libraries) once in each of them.
struct TreeUsage {
    std::uint64_t rss_bytes = 0;
    double cpu_seconds = 0;  // user + system of the live processes and of the children they reaped
    int processes = 0;
};

/// Parses the text of one /proc/<pid>/stat file; nullopt when it is not one. The command name may hold
/// spaces and ')', so the fields after it start at the last ')'.
std::optional<ProcStat> parse_proc_stat(std::string_view line);

/// Pure: for each root that is among `processes` and alive, the sum over it and its live descendants
/// (linked by ppid). Zombies count as gone. Roots that are absent or dead are absent from the map.
std::map<int, TreeUsage> sum_tree_usage(const std::vector<ProcStat>& processes, const std::vector<int>& roots,
                                        std::uint64_t page_size, std::uint64_t ticks_per_second);

/// sum_tree_usage over the processes below `roots`, found through /proc/PID/task/TID/children (a few files
/// per process of the trees, however many the host runs; without those files, one pass over every process
/// of `proc_root`), with the page size and CLK_TCK of this machine. Processes that vanish meanwhile are skipped.
std::map<int, TreeUsage> read_tree_usage(const std::vector<int>& roots, const std::string& proc_root = "/proc");

}  // namespace preforkctl::sys
