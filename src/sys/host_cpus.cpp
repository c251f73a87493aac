#include "sys/host_cpus.hpp"

#include <sched.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace preforkctl::sys {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, separator)) parts.push_back(part);
    return parts;
}

std::optional<std::string> read_first_line(const fs::path& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    return line;
}

std::optional<std::int64_t> to_number(const std::string& text) {
    try {
        std::size_t used = 0;
        const long long value = std::stoll(text, &used);
        if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

// A cgroup hierarchy mount: where it is mounted and which cgroup path its root is.
struct Mount {
    std::string mount_point;  // e.g. /sys/fs/cgroup or /sys/fs/cgroup/cpu,cpuacct
    std::string root;         // field 4 of mountinfo: the cgroup the mount shows as its root
};

// Finds the mount of the cgroup2 hierarchy (controller empty) or of the v1 hierarchy with `controller`.
std::optional<Mount> find_mount(std::string_view mountinfo, const std::string& controller) {
    std::istringstream lines{std::string(mountinfo)};
    std::string line;
    while (std::getline(lines, line)) {
        const std::size_t dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        const auto fields = split(line.substr(0, dash), ' ');
        const auto tail = split(line.substr(dash + 3), ' ');
        if (fields.size() < 5 || tail.size() < 3) continue;
        if (controller.empty() && tail[0] == "cgroup2") return Mount{fields[4], fields[3]};
        if (!controller.empty() && tail[0] == "cgroup") {
            for (const std::string& option : split(tail[2], ',')) {
                if (option == controller) return Mount{fields[4], fields[3]};
            }
        }
    }
    return std::nullopt;
}

// The process's cgroup path in the v2 hierarchy ("0::/a/b") or the v1 hierarchy that has `controller`.
std::optional<std::string> cgroup_path(std::string_view proc_self_cgroup, const std::string& controller) {
    std::istringstream lines{std::string(proc_self_cgroup)};
    std::string line;
    while (std::getline(lines, line)) {
        const std::size_t first = line.find(':');
        const std::size_t second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        const std::string controllers = line.substr(first + 1, second - first - 1);
        const std::string path = line.substr(second + 1);
        if (controller.empty() && line.substr(0, first) == "0" && controllers.empty()) return path;
        if (!controller.empty()) {
            for (const std::string& name : split(controllers, ',')) {
                if (name == controller) return path;
            }
        }
    }
    return std::nullopt;
}

// Directories from the process's cgroup up to the mount point, leaf first, as paths on the host.
std::vector<std::string> cgroup_dirs(const Mount& mount, std::string path) {
    // Inside a container the mount's root is the container's own cgroup: strip it from the path.
    if (mount.root != "/" && path.starts_with(mount.root)) {
        path = path.substr(mount.root.size());
    }
    std::vector<std::string> dirs;
    std::string relative = path == "/" ? "" : path;
    for (;;) {
        dirs.push_back(mount.mount_point + relative);
        if (relative.empty()) break;
        relative = relative.substr(0, relative.rfind('/'));
    }
    return dirs;
}

fs::path under(const HostPaths& paths, const std::string& absolute) {
    return paths.root / fs::path(absolute).relative_path();
}

// Keeps the tightest quota (smallest quota/period).
void consider_quota(std::optional<plan::CpuQuota>& best, std::int64_t quota, std::int64_t period,
                    const std::string& where) {
    if (quota <= 0 || period <= 0) return;
    if (!best || quota * best->period_us < best->quota_us * period) {
        best = plan::CpuQuota{quota, period, where};
    }
}

}  // namespace

void read_cgroup_cpu_facts(const HostPaths& paths, std::string_view proc_self_cgroup, std::string_view mountinfo,
                           plan::CpuFacts& facts) {
    const auto v2_mount = find_mount(mountinfo, "");
    const auto v2_path = cgroup_path(proc_self_cgroup, "");
    if (v2_mount && v2_path) {
        const auto dirs = cgroup_dirs(*v2_mount, *v2_path);
        for (const std::string& dir : dirs) {
            const auto line = read_first_line(under(paths, dir) / "cpu.max");
            if (!line) continue;
            const auto fields = split(*line, ' ');
            if (fields.size() == 2 && fields[0] != "max") {
                const auto quota = to_number(fields[0]);
                const auto period = to_number(fields[1]);
                if (quota && period) consider_quota(facts.quota, *quota, *period, "cgroup v2 cpu.max of " + dir);
            }
        }
        const auto cpuset = read_first_line(under(paths, dirs.front()) / "cpuset.cpus.effective");
        if (cpuset && !cpuset->empty()) {
            if (auto cpus = plan::parse_cpu_list(*cpuset); cpus && !cpus->empty()) {
                facts.cgroup_cpuset = *cpus;
                facts.cpuset_where = dirs.front() + "/cpuset.cpus.effective";
            }
        }
    }

    const auto v1_cpu_mount = find_mount(mountinfo, "cpu");
    const auto v1_cpu_path = cgroup_path(proc_self_cgroup, "cpu");
    if (v1_cpu_mount && v1_cpu_path) {
        for (const std::string& dir : cgroup_dirs(*v1_cpu_mount, *v1_cpu_path)) {
            const auto quota = read_first_line(under(paths, dir) / "cpu.cfs_quota_us");
            const auto period = read_first_line(under(paths, dir) / "cpu.cfs_period_us");
            if (!quota || !period) continue;
            const auto q = to_number(*quota);
            const auto p = to_number(*period);
            if (q && p) consider_quota(facts.quota, *q, *p, "cgroup v1 cpu.cfs_quota_us of " + dir);
        }
    }
    if (!facts.cgroup_cpuset) {
        const auto v1_cpuset_mount = find_mount(mountinfo, "cpuset");
        const auto v1_cpuset_path = cgroup_path(proc_self_cgroup, "cpuset");
        if (v1_cpuset_mount && v1_cpuset_path) {
            const std::string leaf = cgroup_dirs(*v1_cpuset_mount, *v1_cpuset_path).front();
            const auto cpuset = read_first_line(under(paths, leaf) / "cpuset.effective_cpus");
            if (cpuset && !cpuset->empty()) {
                if (auto cpus = plan::parse_cpu_list(*cpuset); cpus && !cpus->empty()) {
                    facts.cgroup_cpuset = *cpus;
                    facts.cpuset_where = leaf + "/cpuset.effective_cpus";
                }
            }
        }
    }
}

std::vector<plan::CpuTopology> read_cpu_topology(const HostPaths& paths, const plan::CpuList& cpus) {
    std::vector<plan::CpuTopology> topology;
    for (int cpu : cpus) {
        const fs::path dir = paths.root / "sys/devices/system/cpu" / ("cpu" + std::to_string(cpu)) / "topology";
        const auto package = read_first_line(dir / "physical_package_id");
        const auto core = read_first_line(dir / "core_id");
        if (!package || !core) continue;
        const auto package_id = to_number(*package);
        const auto core_id = to_number(*core);
        if (!package_id || !core_id) continue;
        topology.push_back({cpu, static_cast<int>(*package_id), static_cast<int>(*core_id)});
    }
    return topology;
}

plan::CpuFacts gather_cpu_facts(const HostPaths& paths) {
    plan::CpuFacts facts;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(static_cast<std::size_t>(cpu), &set)) facts.affinity.push_back(cpu);
        }
    }
    auto read_all = [&](const char* relative) {
        std::ifstream in(paths.root / relative);
        return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    facts.cgroup_unknown = !std::ifstream(paths.root / "proc/self/cgroup");
    read_cgroup_cpu_facts(paths, read_all("proc/self/cgroup"), read_all("proc/self/mountinfo"), facts);
    facts.topology = read_cpu_topology(paths, facts.affinity);
    return facts;
}

}  // namespace preforkctl::sys
