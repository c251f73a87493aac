#include "net/steering.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <vector>

using preforkctl::net::cpu_steering_program;
using preforkctl::net::steering_join_order;

namespace {

// Runs the three instructions the steering program may use, as the kernel would for a packet received
// on `cpu`; nullopt for anything else (so a program that grew another instruction fails the test).
std::optional<std::uint32_t> run(const std::vector<sock_filter>& program, std::uint32_t cpu) {
    std::uint32_t a = 0;
    for (const sock_filter& instruction : program) {
        if (instruction.code == (BPF_LD | BPF_W | BPF_ABS) &&
            instruction.k == static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_CPU)) {
            a = cpu;
        } else if (instruction.code == (BPF_ALU | BPF_MOD | BPF_K) && instruction.k != 0) {
            a %= instruction.k;
        } else if (instruction.code == (BPF_RET | BPF_A)) {
            return a;
        } else {
            return std::nullopt;
        }
    }
    return std::nullopt;
}

}  // namespace

TEST(SteeringProgram, LoadsTheCpuReducesItModuloTheGroupSizeAndReturnsIt) {
    const std::vector<sock_filter> program = cpu_steering_program(3);
    ASSERT_EQ(program.size(), 3u);
    EXPECT_EQ(program[0].code, BPF_LD | BPF_W | BPF_ABS);
    EXPECT_EQ(program[0].k, static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_CPU));
    EXPECT_EQ(program[1].code, BPF_ALU | BPF_MOD | BPF_K);
    EXPECT_EQ(program[1].k, 3u);
    EXPECT_EQ(program[2].code, BPF_RET | BPF_A);
    for (const sock_filter& instruction : program) {
        EXPECT_EQ(instruction.jt, 0);
        EXPECT_EQ(instruction.jf, 0);
    }
}

TEST(SteeringProgram, PicksIndexCpuModuloGroupSizeForCpusZeroToSevenAndGroupsOfOneToFour) {
    for (unsigned size = 1; size <= 4; ++size) {
        const std::vector<sock_filter> program = cpu_steering_program(size);
        for (std::uint32_t cpu = 0; cpu < 8; ++cpu) {
            const std::optional<std::uint32_t> index = run(program, cpu);
            ASSERT_TRUE(index.has_value()) << "size " << size << " cpu " << cpu;
            EXPECT_EQ(*index, cpu % size) << "size " << size << " cpu " << cpu;
            EXPECT_LT(*index, size);
        }
    }
}

TEST(SteeringProgram, AnEmptyGroupGetsAModulusOfOneWhichTheKernelAccepts) {
    EXPECT_EQ(cpu_steering_program(0)[1].k, 1u);
}

TEST(SteeringJoinOrder, SlotsPinnedToCpusZeroToNMinusOneJoinInCpuOrder) {
    EXPECT_EQ(steering_join_order({0, 1}), (std::vector<int>{0, 1}));
    EXPECT_EQ(steering_join_order({0, 1, 2, 3}), (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(steering_join_order({}), (std::vector<int>{}));
}

TEST(SteeringJoinOrder, SpreadOrderPinningPutsEachSlotAtTheIndexOfItsCpu) {
    // Four CPUs, two cores of two siblings: spread order pins slots 0..3 to CPUs 0, 2, 1, 3.
    const std::vector<int> order = steering_join_order({0, 2, 1, 3});
    EXPECT_EQ(order, (std::vector<int>{0, 2, 1, 3}));
    const std::vector<int> cpus{0, 2, 1, 3};
    for (std::size_t index = 0; index < order.size(); ++index) {
        EXPECT_EQ(cpus[static_cast<std::size_t>(order[index])] % 4, static_cast<int>(index));
    }
}

TEST(SteeringJoinOrder, CpusBeyondTheGroupAreFoldedModuloItsSize) {
    // Two slots on CPUs 5 and 2 of a bigger host: 5 % 2 = 1, 2 % 2 = 0.
    EXPECT_EQ(steering_join_order({5, 2}), (std::vector<int>{1, 0}));
}

TEST(SteeringJoinOrder, SlotsThatCompeteForAnIndexOrHaveNoCpuFillTheFreeIndicesInSlotOrder) {
    // CPUs 0 and 2 both fold to index 0 of a group of two: slot 1 takes the free index 1.
    EXPECT_EQ(steering_join_order({0, 2}), (std::vector<int>{0, 1}));
    // More slots than CPUs (wrapping): slots 2 and 3 repeat CPUs 0 and 1 and take indices 2 and 3.
    EXPECT_EQ(steering_join_order({0, 1, 0, 1}), (std::vector<int>{0, 1, 2, 3}));
    // Slot 0 unpinned: slot 1 (CPU 0) takes index 0, slot 0 index 1.
    EXPECT_EQ(steering_join_order({-1, 0}), (std::vector<int>{1, 0}));
}
