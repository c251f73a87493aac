#include "plan/cpus.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace preforkctl::plan;
using ::testing::HasSubstr;

namespace {

// 8 CPUs, 4 physical cores: cpu i and i+4 are SMT siblings (a common x86 numbering).
std::vector<CpuTopology> eight_cpus_four_cores() {
    std::vector<CpuTopology> topology;
    for (int cpu = 0; cpu < 8; ++cpu) topology.push_back({cpu, 0, cpu % 4});
    return topology;
}

}  // namespace

TEST(CpuList, ParsesKernelListSyntaxAndFormatsItBack) {
    EXPECT_EQ(*parse_cpu_list("0-3,8"), (CpuList{0, 1, 2, 3, 8}));
    EXPECT_EQ(*parse_cpu_list("5\n"), (CpuList{5}));
    EXPECT_EQ(*parse_cpu_list(" 3,1,1 "), (CpuList{1, 3}));
    EXPECT_EQ(*parse_cpu_list(""), CpuList{});
    EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
    EXPECT_EQ(format_cpu_list({}), "");
}

TEST(CpuList, RejectsBadListsNamingTheText) {
    for (const char* bad : {"3-1", "-1", "a", "1,,2", "0-", "1-2-3", "99999", ","}) {
        auto list = parse_cpu_list(bad);
        ASSERT_FALSE(list) << bad;
        EXPECT_THAT(list.error().message, HasSubstr("invalid CPU list"));
    }
    EXPECT_EQ(parse_cpu_list("3-1").error().message, "invalid CPU list '3-1': range end before start");
}

TEST(SpreadOrder, PutsPhysicalCoresBeforeTheirSmtSiblings) {
    EXPECT_EQ(spread_order({0, 1, 2, 3, 4, 5, 6, 7}, eight_cpus_four_cores()),
              (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    // Siblings numbered next to each other: (0,1) and (2,3) share cores.
    const std::vector<CpuTopology> adjacent{{0, 0, 0}, {1, 0, 0}, {2, 0, 1}, {3, 0, 1}};
    EXPECT_EQ(spread_order({0, 1, 2, 3}, adjacent), (std::vector<int>{0, 2, 1, 3}));
    // Same core ids on two packages are different cores.
    const std::vector<CpuTopology> two_packages{{0, 0, 0}, {1, 1, 0}, {2, 0, 0}, {3, 1, 0}};
    EXPECT_EQ(spread_order({0, 1, 2, 3}, two_packages), (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(spread_order({4, 6}, {}), (std::vector<int>{4, 6})) << "no topology: every CPU is its own core";
}

TEST(CpuBudget, AffinityAloneDecidesOnAPlainHost) {
    CpuFacts facts;
    facts.affinity = {0, 1, 2, 3, 4, 5, 6, 7};
    facts.topology = eight_cpus_four_cores();
    auto budget = decide_cpu_budget(facts, std::nullopt);
    ASSERT_TRUE(budget);
    EXPECT_EQ(budget->auto_workers, 8);
    EXPECT_EQ(budget->source, "sched_getaffinity (0-7)");
}

TEST(CpuBudget, UnknownCgroupLimitsAreSaidBesideTheSourceThatDecided) {
    CpuFacts facts;
    facts.affinity = {0, 1};
    facts.cgroup_unknown = true;  // no /proc: a CPU quota may exist that nobody could read
    auto budget = decide_cpu_budget(facts, std::nullopt);
    ASSERT_TRUE(budget);
    EXPECT_EQ(budget->auto_workers, 2);
    EXPECT_EQ(budget->source, "sched_getaffinity (0-1); cgroup limits unknown: /proc/self/cgroup is unreadable");
}

TEST(CpuBudget, NarrowTasksetAffinityGivesOneWorkerPinnedThere) {
    CpuFacts facts;
    facts.affinity = {1};
    facts.topology = eight_cpus_four_cores();
    auto budget = decide_cpu_budget(facts, std::nullopt);
    ASSERT_TRUE(budget);
    EXPECT_EQ(budget->auto_workers, 1);
    EXPECT_EQ(map_slots_to_cpus(*budget, 3), (std::vector<int>{1, 1, 1}));
}

TEST(CpuBudget, CgroupCpusetNarrowsTheAffinityAndSaysSo) {
    CpuFacts facts;
    facts.affinity = {0, 1, 2, 3, 4, 5, 6, 7};
    facts.cgroup_cpuset = CpuList{4, 5, 6, 7};
    facts.cpuset_where = "/sys/fs/cgroup/pod/cpuset.cpus.effective";
    auto budget = decide_cpu_budget(facts, std::nullopt);
    ASSERT_TRUE(budget);
    EXPECT_EQ(budget->auto_workers, 4);
    EXPECT_EQ(map_slots_to_cpus(*budget, 4), (std::vector<int>{4, 5, 6, 7}));
    EXPECT_THAT(budget->source, HasSubstr("cgroup cpuset /sys/fs/cgroup/pod/cpuset.cpus.effective (4-7)"));
}

TEST(CpuBudget, QuotaCapsAutoWorkersRoundingUpAndNeverBelowOne) {
    CpuFacts facts;
    facts.affinity = {0, 1, 2, 3, 4, 5, 6, 7};
    facts.quota = CpuQuota{150000, 100000, "cgroup v2 cpu.max of /sys/fs/cgroup/app"};
    auto budget = decide_cpu_budget(facts, std::nullopt);
    ASSERT_TRUE(budget);
    EXPECT_EQ(budget->auto_workers, 2);
    EXPECT_EQ(budget->cpus.size(), 8u) << "a quota limits time, not which CPUs";
    EXPECT_EQ(budget->source, "cgroup v2 cpu.max of /sys/fs/cgroup/app (150000/100000 = 1.50 CPUs)");
    facts.quota = CpuQuota{10000, 100000, "q"};
    EXPECT_EQ(decide_cpu_budget(facts, std::nullopt)->auto_workers, 1);
    facts.quota = CpuQuota{5000000, 100000, "q"};
    EXPECT_EQ(decide_cpu_budget(facts, std::nullopt)->auto_workers, 8) << "a generous quota does not add CPUs";
}

TEST(CpuBudget, CpusRestrictionMustLieInsideTheAllowedSet) {
    CpuFacts facts;
    facts.affinity = {0, 1, 2, 3};
    auto inside = decide_cpu_budget(facts, CpuList{2, 3});
    ASSERT_TRUE(inside);
    EXPECT_EQ(inside->auto_workers, 2);
    EXPECT_EQ(inside->source, "--cpus 2-3");
    auto outside = decide_cpu_budget(facts, CpuList{3, 4});
    ASSERT_FALSE(outside);
    EXPECT_EQ(outside.error().message, "CPU 4 is not available to this process (allowed: 0-3)");
}

TEST(CpuBudget, MappingIsStableAndWrapsWhenWorkersExceedCpus) {
    CpuFacts facts;
    facts.affinity = {0, 1, 2, 3, 4, 5, 6, 7};
    facts.topology = eight_cpus_four_cores();
    auto budget = decide_cpu_budget(facts, CpuList{0, 4});
    ASSERT_TRUE(budget);
    EXPECT_EQ(map_slots_to_cpus(*budget, 5), (std::vector<int>{0, 4, 0, 4, 0}));
    EXPECT_EQ(map_slots_to_cpus(*budget, 5), map_slots_to_cpus(*budget, 5));
}
