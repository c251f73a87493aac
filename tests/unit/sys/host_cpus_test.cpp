#include "sys/host_cpus.hpp"

#include <gtest/gtest.h>

#include "fake_root.hpp"

#include <filesystem>
#include <fstream>

using namespace preforkctl;
using namespace preforkctl::sys;
namespace fs = std::filesystem;

namespace {

constexpr const char* kV2Mount =
    "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
constexpr const char* kV1Mounts =
    "40 30 0:35 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:16 - cgroup cgroup rw,cpu,cpuacct\n"
    "41 30 0:36 / /sys/fs/cgroup/cpuset rw,nosuid shared:17 - cgroup cgroup rw,cpuset\n";

// A fake root with /sys and /proc files.
class FakeHost : public FakeRoot {
protected:
    plan::CpuFacts read(const std::string& cgroup, const std::string& mountinfo) {
        plan::CpuFacts facts;
        read_cgroup_cpu_facts(HostPaths{root_}, cgroup, mountinfo, facts);
        return facts;
    }
};

}  // namespace

TEST_F(FakeHost, V2QuotaOnAnAncestorIsFoundWalkingUpFromTheLeaf) {
    write("sys/fs/cgroup/cpu.max", "max 100000\n");
    write("sys/fs/cgroup/kubepods/cpu.max", "150000 100000\n");
    write("sys/fs/cgroup/kubepods/pod1/cpu.max", "max 100000\n");
    write("sys/fs/cgroup/kubepods/pod1/cpuset.cpus.effective", "0-3\n");
    const auto facts = read("0::/kubepods/pod1\n", kV2Mount);
    ASSERT_TRUE(facts.quota);
    EXPECT_EQ(facts.quota->quota_us, 150000);
    EXPECT_EQ(facts.quota->period_us, 100000);
    EXPECT_EQ(facts.quota->where, "cgroup v2 cpu.max of /sys/fs/cgroup/kubepods");
    ASSERT_TRUE(facts.cgroup_cpuset);
    EXPECT_EQ(*facts.cgroup_cpuset, (plan::CpuList{0, 1, 2, 3}));
}

TEST_F(FakeHost, TheTightestQuotaOnThePathWins) {
    write("sys/fs/cgroup/a/cpu.max", "400000 100000\n");
    write("sys/fs/cgroup/a/b/cpu.max", "50000 50000\n");
    const auto facts = read("0::/a/b\n", kV2Mount);
    ASSERT_TRUE(facts.quota);
    EXPECT_EQ(facts.quota->where, "cgroup v2 cpu.max of /sys/fs/cgroup/a/b");
}

TEST_F(FakeHost, ContainerMountWhoseRootIsTheOwnCgroupReadsTheMountPoint) {
    write("sys/fs/cgroup/cpu.max", "200000 100000\n");
    const auto facts = read("0::/\n",
                            "35 24 0:30 /docker/abc /sys/fs/cgroup ro,nosuid shared:9 - cgroup2 cgroup2 rw\n");
    ASSERT_TRUE(facts.quota);
    EXPECT_EQ(facts.quota->quota_us, 200000);
}

TEST_F(FakeHost, V1CfsQuotaIsTheFallback) {
    write("sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_quota_us", "50000\n");
    write("sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n");
    write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    write("sys/fs/cgroup/cpuset/docker/x/cpuset.effective_cpus", "2-3\n");
    const auto facts = read("12:cpuset:/docker/x\n4:cpu,cpuacct:/docker/x\n0::/\n", kV1Mounts);
    ASSERT_TRUE(facts.quota);
    EXPECT_EQ(facts.quota->quota_us, 50000);
    EXPECT_EQ(facts.quota->where, "cgroup v1 cpu.cfs_quota_us of /sys/fs/cgroup/cpu,cpuacct/docker/x");
    ASSERT_TRUE(facts.cgroup_cpuset);
    EXPECT_EQ(*facts.cgroup_cpuset, (plan::CpuList{2, 3}));
}

TEST_F(FakeHost, NoCgroupAtAllMeansNoLimit) {
    const auto facts = read("", "");
    EXPECT_FALSE(facts.quota);
    EXPECT_FALSE(facts.cgroup_cpuset);
    const auto unlimited = read("0::/\n", kV2Mount);
    EXPECT_FALSE(unlimited.quota) << "missing cpu.max files are no limit";
}

TEST_F(FakeHost, TopologyIsReadFromSysfs) {
    for (int cpu = 0; cpu < 4; ++cpu) {
        const std::string dir = "sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
        write(dir + "physical_package_id", "0\n");
        write(dir + "core_id", std::to_string(cpu / 2) + "\n");
    }
    const auto topology = read_cpu_topology(HostPaths{root_}, {0, 1, 2, 3, 9});
    ASSERT_EQ(topology.size(), 4u) << "cpu 9 has no topology files";
    EXPECT_EQ(topology[3].core, 1);
}

TEST_F(FakeHost, AMissingProcSelfCgroupMarksTheCgroupLimitsUnknown) {
    EXPECT_TRUE(gather_cpu_facts(HostPaths{root_}).cgroup_unknown) << "an empty root has no /proc";
    write("proc/self/cgroup", "0::/\n");
    EXPECT_FALSE(gather_cpu_facts(HostPaths{root_}).cgroup_unknown);
}

TEST(HostCpus, TheRealHostHasAtLeastOneAllowedCpu) {
    const auto facts = gather_cpu_facts();
    EXPECT_FALSE(facts.affinity.empty());
}
