#include "supervise/scaling_policy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace preforkctl::supervise {
namespace {

using ::testing::HasSubstr;
using Kind = control::request::Scale::Kind;

plan::Plan plan_with_fd_limit(std::uint64_t limit) {
    plan::Plan plan;
    plan.listeners.resize(1);
    plan.fd_limit = limit;
    return plan;
}

TEST(ScalingPolicy, AbsoluteAndRelativeRequestsGiveTheTarget) {
    const plan::Plan plan = plan_with_fd_limit(0);
    EXPECT_EQ(*decide_scale({Kind::to, 6}, 4, plan), 6);
    EXPECT_EQ(*decide_scale({Kind::up, 2}, 4, plan), 6);
    EXPECT_EQ(*decide_scale({Kind::down, 3}, 4, plan), 1);
    EXPECT_EQ(*decide_scale({Kind::to, 4}, 4, plan), 4);
}

TEST(ScalingPolicy, OneWorkerIsTheMinimumAndTheLimitIsTheMaximum) {
    const plan::Plan plan = plan_with_fd_limit(0);
    EXPECT_EQ(decide_scale({Kind::down, 1}, 1, plan).error().message, "one worker is the minimum; not removing it");
    EXPECT_THAT(decide_scale({Kind::to, 0}, 3, plan).error().message, HasSubstr("cannot scale to 0"));
    EXPECT_THAT(decide_scale({Kind::down, 5}, 3, plan).error().message, HasSubstr("cannot scale to -2"));
    EXPECT_THAT(decide_scale({Kind::up, 1}, plan::kMaxWorkers, plan).error().message, HasSubstr("at most 4096"));
}

TEST(ScalingPolicy, GrowingIsRefusedBeyondTheDescriptorsPreforkctlMayOpen) {
    const plan::Plan plan = plan_with_fd_limit(200);
    const std::uint64_t per_worker = plan::estimate_descriptors(plan, 2) - plan::estimate_descriptors(plan, 1);
    ASSERT_GT(per_worker, 0u);
    int fits = 1;
    while (plan::estimate_descriptors(plan, fits + 1) <= 200) ++fits;
    EXPECT_EQ(*decide_scale({Kind::to, fits}, 1, plan), fits);
    EXPECT_THAT(decide_scale({Kind::to, fits + 1}, 1, plan).error().message,
                HasSubstr("file descriptors, but preforkctl may open only 200"));
    // Shrinking is always allowed, even from a count above the limit.
    EXPECT_EQ(*decide_scale({Kind::down, 1}, fits + 5, plan), fits + 4);
}

}  // namespace
}  // namespace preforkctl::supervise
