#include "logrelay/pipe_sizing.hpp"

#include <gtest/gtest.h>

using namespace preforkctl::logrelay;

TEST(PipeSizing, APipeReadWhileFullGrowsFourfoldUpToOneMebibyte) {
    EXPECT_EQ(next_pipe_capacity(64 * 1024, 64 * 1024, kPipeGrowthBudget), 256u * 1024);
    EXPECT_EQ(next_pipe_capacity(256 * 1024, 256 * 1024, kPipeGrowthBudget), 1024u * 1024);
    EXPECT_EQ(next_pipe_capacity(512 * 1024, 512 * 1024, kPipeGrowthBudget), 1024u * 1024);
    EXPECT_EQ(next_pipe_capacity(1024 * 1024, 1024 * 1024, kPipeGrowthBudget), 1024u * 1024);
}

TEST(PipeSizing, APipeThatWasNotFullKeepsItsSize) {
    EXPECT_EQ(next_pipe_capacity(64 * 1024, 64 * 1024 - 1, kPipeGrowthBudget), 64u * 1024);
    EXPECT_EQ(next_pipe_capacity(64 * 1024, 100, kPipeGrowthBudget), 64u * 1024);
}

TEST(PipeSizing, GrowthStopsWhenTheBudgetForAllPipesIsSpent) {
    EXPECT_EQ(next_pipe_capacity(64 * 1024, 64 * 1024, 192 * 1024), 256u * 1024) << "exactly enough";
    EXPECT_EQ(next_pipe_capacity(64 * 1024, 64 * 1024, 192 * 1024 - 1), 64u * 1024);
    EXPECT_EQ(next_pipe_capacity(64 * 1024, 64 * 1024, 0), 64u * 1024);
}

TEST(PipeSizing, AnUnknownCapacityNeverGrows) {
    EXPECT_EQ(next_pipe_capacity(0, 4096, kPipeGrowthBudget), 0u);
}
