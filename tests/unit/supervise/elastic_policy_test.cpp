#include "supervise/elastic_policy.hpp"

#include <gtest/gtest.h>

namespace preforkctl::supervise {
namespace {

using namespace std::chrono_literals;

plan::ElasticSpec spec(int min, int max) {
    plan::ElasticSpec elastic;
    elastic.min = min;
    elastic.max = max;
    elastic.scale_up_after = Millis{1'000};
    elastic.scale_down_after = Millis{30'000};
    return elastic;
}

// A fake clock and the state decide_elastic keeps between samples: each sample() is one decision at `now`.
struct Feed {
    ElasticState state;
    TimePoint now{};

    ElasticDecision sample(std::uint32_t waiting, int live, const plan::ElasticSpec& elastic, bool woken = false) {
        ElasticDecision decision = decide_elastic(state, waiting, live, woken, now, elastic);
        state = decision.state;
        return decision;
    }
};

TEST(ElasticPolicy, TheSamplePeriodIsAQuarterOfTheShorterDelayWithinBounds) {
    EXPECT_EQ(sample_period(spec(1, 4)), Millis{250});
    plan::ElasticSpec quick = spec(1, 4);
    quick.scale_up_after = Millis{200};
    EXPECT_EQ(sample_period(quick), Millis{50});
    quick.scale_up_after = Millis{1};
    EXPECT_EQ(sample_period(quick), Millis{10});
}

TEST(ElasticPolicy, OnDemandStartsAWorkerAtTheFirstWaitingConnection) {
    Feed feed;
    const ElasticDecision decision = feed.sample(1, 0, spec(0, 4), true);
    EXPECT_EQ(decision.step, ElasticStep::up);
    EXPECT_EQ(decision.reason, "on_demand");
    EXPECT_EQ(decision.why, "1 connection waits and no worker runs");
    EXPECT_FALSE(decision.next.watch_readable);
}

TEST(ElasticPolicy, AWorkerIsAddedOnlyAfterTheQueueWaitedTheWholeDelay) {
    Feed feed;
    const plan::ElasticSpec elastic = spec(1, 3);
    EXPECT_EQ(feed.sample(2, 1, elastic).step, ElasticStep::none);
    feed.now += 999ms;
    EXPECT_EQ(feed.sample(2, 1, elastic).step, ElasticStep::none);
    feed.now += 1ms;
    const ElasticDecision decision = feed.sample(3, 1, elastic);
    EXPECT_EQ(decision.step, ElasticStep::up);
    EXPECT_EQ(decision.reason, "load");
    EXPECT_NE(decision.why.find("3 connections wait"), std::string::npos) << decision.why;
}

TEST(ElasticPolicy, AtMostOneStepPerDelay) {
    Feed feed;
    const plan::ElasticSpec elastic = spec(1, 8);
    feed.sample(5, 1, elastic);
    feed.now += 1s;
    ASSERT_EQ(feed.sample(5, 1, elastic).step, ElasticStep::up);
    feed.now += 500ms;
    EXPECT_EQ(feed.sample(5, 2, elastic).step, ElasticStep::none);
    feed.now += 500ms;
    EXPECT_EQ(feed.sample(5, 2, elastic).step, ElasticStep::up);
}

TEST(ElasticPolicy, AnEmptySampleRestartsTheWait) {
    Feed feed;
    const plan::ElasticSpec elastic = spec(1, 3);
    feed.sample(1, 1, elastic);
    feed.now += 900ms;
    feed.sample(0, 1, elastic);
    feed.now += 100ms;
    EXPECT_EQ(feed.sample(1, 1, elastic).step, ElasticStep::none);
    feed.now += 999ms;
    EXPECT_EQ(feed.sample(1, 1, elastic).step, ElasticStep::none);
    feed.now += 1ms;
    EXPECT_EQ(feed.sample(1, 1, elastic).step, ElasticStep::up);
}

TEST(ElasticPolicy, NeverAboveMax) {
    Feed feed;
    const plan::ElasticSpec elastic = spec(1, 2);
    feed.sample(9, 2, elastic);
    feed.now += 10s;
    const ElasticDecision decision = feed.sample(9, 2, elastic);
    EXPECT_EQ(decision.step, ElasticStep::none);
    EXPECT_FALSE(decision.next.watch_readable);  // above MIN: the idle time must be counted once the queue empties
}

TEST(ElasticPolicy, TheNewestWorkerGoesAfterTheQueuesWereEmptyTheWholeDelayAndNeverBelowMin) {
    Feed feed;
    const plan::ElasticSpec elastic = spec(1, 4);
    EXPECT_EQ(feed.sample(0, 3, elastic).step, ElasticStep::none);
    feed.now += 29s;
    EXPECT_EQ(feed.sample(0, 3, elastic).step, ElasticStep::none);
    feed.now += 1s;
    ElasticDecision decision = feed.sample(0, 3, elastic);
    EXPECT_EQ(decision.step, ElasticStep::down);
    EXPECT_EQ(decision.reason, "idle");
    EXPECT_FALSE(decision.next.watch_readable);  // 2 workers left, still above MIN
    feed.now += 30s;
    decision = feed.sample(0, 2, elastic);
    EXPECT_EQ(decision.step, ElasticStep::down);
    EXPECT_TRUE(decision.next.watch_readable);  // at MIN now: nothing to sample for
    feed.now += 300s;
    EXPECT_EQ(feed.sample(0, 1, elastic).step, ElasticStep::none);
}

TEST(ElasticPolicy, OnDemandGoesBackToZero) {
    Feed feed;
    const plan::ElasticSpec elastic = spec(0, 2);
    feed.sample(0, 1, elastic);
    feed.now += 30s;
    const ElasticDecision decision = feed.sample(0, 1, elastic);
    EXPECT_EQ(decision.step, ElasticStep::down);
    EXPECT_TRUE(decision.next.watch_readable);
}

TEST(ElasticPolicy, AConnectionRestartsTheIdleTime) {
    Feed feed;
    const plan::ElasticSpec elastic = spec(1, 4);
    feed.sample(0, 2, elastic);
    feed.now += 20s;
    feed.sample(1, 2, elastic);
    feed.now += 20s;
    EXPECT_EQ(feed.sample(0, 2, elastic).step, ElasticStep::none);
    feed.now += 29s;
    EXPECT_EQ(feed.sample(0, 2, elastic).step, ElasticStep::none);
    feed.now += 1s;
    EXPECT_EQ(feed.sample(0, 2, elastic).step, ElasticStep::down);
}

TEST(ElasticPolicy, AtMinAnIdleSampleWatchesTheSocketsUnlessAConnectionJustWokeIt) {
    Feed feed;
    const plan::ElasticSpec elastic = spec(1, 4);
    EXPECT_TRUE(feed.sample(0, 1, elastic).next.watch_readable);
    // Woken by a connection that a worker took at once: look again after a period, not at the next connection.
    const ElasticDecision woken = feed.sample(0, 1, elastic, true);
    EXPECT_FALSE(woken.next.watch_readable);
    EXPECT_EQ(woken.next.delay, sample_period(elastic));
    EXPECT_TRUE(feed.sample(0, 1, elastic).next.watch_readable);
}

}  // namespace
}  // namespace preforkctl::supervise
