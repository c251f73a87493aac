#pragma once
// Reads the CPU facts of this process from the kernel: affinity, cgroup cpuset and quota, topology.

#include <filesystem>
#include <string_view>

#include "plan/cpus.hpp"

namespace preforkctl::sys {

/// Where the cgroup/sysfs/proc files are; tests point these into a fake tree.
struct HostPaths {
    std::filesystem::path root = "/";  // prefix for /proc, /sys
};

/// Reads the cgroup cpuset and the tightest CPU quota of the process described by
/// `proc_self_cgroup` (text of /proc/self/cgroup) and `mountinfo` (text of /proc/self/mountinfo), with
/// every path resolved under `paths.root`. Fills cgroup_cpuset, cpuset_where and quota; missing files
/// mean "no limit". cgroup v2: walk from the process's cgroup up to the mount root reading `cpu.max`
/// ("max P" = unlimited) and take the smallest quota/period; `cpuset.cpus.effective` of the leaf.
/// cgroup v1 fallback: the cpu controller's cpu.cfs_quota_us / cpu.cfs_period_us (-1 = unlimited), same walk,
/// and the cpuset controller's cpuset.effective_cpus.
void read_cgroup_cpu_facts(const HostPaths& paths, std::string_view proc_self_cgroup, std::string_view mountinfo,
                           plan::CpuFacts& facts);

/// Reads sysfs topology (devices/system/cpu/cpuN/topology/{physical_package_id,core_id}) for `cpus`.
std::vector<plan::CpuTopology> read_cpu_topology(const HostPaths& paths, const plan::CpuList& cpus);

/// Everything above for the running process (sched_getaffinity + /proc/self/{cgroup,mountinfo}).
plan::CpuFacts gather_cpu_facts(const HostPaths& paths = {});

}  // namespace preforkctl::sys
