#pragma once
// CPU lists, the CPU budget (§4) and the slot -> CPU map. Pure: no syscalls, no file access.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.hpp"

namespace preforkctl::plan {

/// Sorted, duplicate-free CPU numbers.
using CpuList = std::vector<int>;

/// Parses the kernel's list syntax ("0-3,8", "5", "" -> empty, trailing newline allowed).
/// Error message: "invalid CPU list '0-': <why>".
Result<CpuList> parse_cpu_list(std::string_view text);

/// Formats as the kernel does, ranges compressed: {0,1,2,3,8} -> "0-3,8".
std::string format_cpu_list(const CpuList& cpus);

/// Set intersection of two sorted lists.
CpuList intersect(const CpuList& a, const CpuList& b);

/// Where one CPU sits: physical package and core id (from sysfs topology).
struct CpuTopology {
    int cpu = 0;
    int package = 0;
    int core = 0;
};

/// A CPU bandwidth limit (cgroup cpu.max / cfs quota) and where it was read.
struct CpuQuota {
    std::int64_t quota_us = 0;
    std::int64_t period_us = 0;
    std::string where;  // e.g. "cgroup v2 cpu.max of /sys/fs/cgroup/a/b"
};

/// What the machine says about CPUs; gathered once by sys::gather_cpu_facts.
struct CpuFacts {
    CpuList affinity;                      // sched_getaffinity of preforkctl
    std::optional<CpuList> cgroup_cpuset;  // cpuset.cpus.effective, when readable
    std::string cpuset_where;              // file it came from
    std::optional<CpuQuota> quota;         // tightest quota on the cgroup path, if any
    std::vector<CpuTopology> topology;     // one entry per known CPU; may be empty
    bool cgroup_unknown = false;           // /proc/self/cgroup was unreadable (no /proc): limits not checked
};

/// The CPUs workers may use and how many workers `auto` means.
struct CpuBudget {
    CpuList cpus;        // allowed CPUs in spread order (physical cores first, then SMT siblings)
    int auto_workers = 1;
    std::string source;  // which fact decided auto_workers, for --print-plan
};

/// Allowed set = affinity ∩ cgroup cpuset (∩ `restrict_to` when given). auto_workers = |allowed| capped
/// by ceil(quota/period), at least 1. Error when `restrict_to` names a CPU outside the allowed set or the
/// allowed set is empty.
Result<CpuBudget> decide_cpu_budget(const CpuFacts& facts, const std::optional<CpuList>& restrict_to);

/// Orders CPUs for spreading: the first CPU of each physical core (by package, core), then the second
/// sibling of each core, and so on. CPUs missing from `topology` count as their own core.
std::vector<int> spread_order(const CpuList& cpus, const std::vector<CpuTopology>& topology);

/// Slot i -> CPU: spread[i % spread.size()]. A pure function of (budget, workers).
std::vector<int> map_slots_to_cpus(const CpuBudget& budget, int workers);

}  // namespace preforkctl::plan
