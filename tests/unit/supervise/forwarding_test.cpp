#include "supervise/forwarding.hpp"

#include <gtest/gtest.h>

#include <csignal>

using namespace preforkctl;
using namespace preforkctl::supervise;

TEST(Forwarding, PassesTheSignalOnToTheProcessGroupByDefault) {
    const plan::ForwardSpec spec;
    const auto forward = forward_of(spec, SIGUSR1);
    ASSERT_TRUE(forward);
    EXPECT_EQ(forward->signal, SIGUSR1);
    EXPECT_TRUE(forward->to_group);
}

TEST(Forwarding, WorkerScopeReachesOnlyTheWorkerProcess) {
    plan::ForwardSpec spec;
    spec.scope = plan::SignalScope::worker;
    EXPECT_FALSE(forward_of(spec, SIGWINCH)->to_group);
}

TEST(Forwarding, RewritesReplaceTheSignalAndZeroDropsIt) {
    plan::ForwardSpec spec;
    spec.rewrites = {{SIGUSR1, SIGUSR2}, {SIGUSR2, SIGUSR1}, {SIGWINCH, 0}};
    EXPECT_EQ(forward_of(spec, SIGUSR1)->signal, SIGUSR2);
    EXPECT_EQ(forward_of(spec, SIGUSR2)->signal, SIGUSR1) << "a swap is applied once, not chained";
    EXPECT_FALSE(forward_of(spec, SIGWINCH));
}
