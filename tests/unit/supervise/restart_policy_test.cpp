#include "supervise/restart_policy.hpp"

#include <gtest/gtest.h>

using namespace preforkctl;
using namespace preforkctl::supervise;
using namespace std::chrono_literals;

namespace {

plan::RestartSpec spec() {
    plan::RestartSpec s;
    s.backoff_min = 100ms;
    s.backoff_max = 1s;
    s.min_uptime = 5s;
    s.max_restarts = 5;
    s.window = 60s;
    return s;
}

const ExitInfo crash{false, 1};
const ExitInfo clean{false, 0};

}  // namespace

TEST(RestartPolicy, DoublesTheDelayUpToTheCapThenResetsAfterMinUptime) {
    plan::RestartSpec s = spec();
    s.max_restarts = 100;
    RestartHistory history;
    TimePoint now{};
    std::vector<long> delays;
    for (int i = 0; i < 6; ++i) {
        delays.push_back(decide_restart(s, history, crash, 10ms, now).delay.count());
        now += 2s;
    }
    EXPECT_EQ(delays, (std::vector<long>{100, 200, 400, 800, 1000, 1000}));
    EXPECT_EQ(decide_restart(s, history, crash, 5s, now).delay, 100ms) << "a worker that stayed up resets the delay";
    EXPECT_EQ(decide_restart(s, history, crash, 1s, now).delay, 200ms);
}

TEST(RestartPolicy, NeverIsABusyLoopEvenForACommandThatExitsAtOnce) {
    plan::RestartSpec s = spec();
    s.max_restarts = 1000;
    RestartHistory history;
    for (int i = 0; i < 50; ++i) {
        EXPECT_GE(decide_restart(s, history, crash, 0ms, TimePoint{} + i * 1ms).delay, 100ms);
    }
}

TEST(RestartPolicy, OnFailureRestartsOnlyFailuresAndNeverRestartsNothing) {
    plan::RestartSpec s = spec();
    RestartHistory history;
    s.when = plan::RestartWhen::on_failure;
    EXPECT_EQ(decide_restart(s, history, clean, 0ms, {}).verdict, Verdict::stay_down);
    EXPECT_EQ(decide_restart(s, history, crash, 0ms, {}).verdict, Verdict::restart);
    EXPECT_EQ(decide_restart(s, history, ExitInfo{true, 9}, 0ms, {}).verdict, Verdict::restart);
    s.when = plan::RestartWhen::never;
    EXPECT_EQ(decide_restart(s, history, crash, 0ms, {}).verdict, Verdict::stay_down);
    s.when = plan::RestartWhen::always;
    EXPECT_EQ(decide_restart(s, history, clean, 0ms, {}).verdict, Verdict::restart);
}

TEST(RestartPolicy, MoreThanMaxRestartsInsideTheWindowIsTheThreshold) {
    plan::RestartSpec s = spec();
    RestartHistory history;
    TimePoint now{};
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(decide_restart(s, history, crash, 1ms, now).verdict, Verdict::restart) << i;
        now += 1s;
    }
    EXPECT_EQ(decide_restart(s, history, crash, 1ms, now).verdict, Verdict::threshold);
}

TEST(RestartPolicy, TheWindowSlidesSoCrashesLongAfterStartCountToo) {
    plan::RestartSpec s = spec();
    s.max_restarts = 2;
    s.window = 10s;
    RestartHistory history;
    TimePoint now{};
    // Spread-out crashes never reach the threshold...
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(decide_restart(s, history, crash, 1h, now).verdict, Verdict::restart);
        now += 6s;
    }
    // ...but three in a burst, hours after start, do.
    now += 1h;
    EXPECT_EQ(decide_restart(s, history, crash, 1h, now).verdict, Verdict::restart);
    EXPECT_EQ(decide_restart(s, history, crash, 1s, now + 1s).verdict, Verdict::restart);
    EXPECT_EQ(decide_restart(s, history, crash, 1s, now + 2s).verdict, Verdict::threshold);
}

TEST(ExitInfo, DescribesCodesAndSignalsTheShellWay) {
    EXPECT_EQ(ExitInfo({false, 3}).describe(), "exited with status 3");
    EXPECT_EQ(ExitInfo({true, 9}).describe(), "was killed by SIGKILL");
    EXPECT_EQ(ExitInfo({true, 15}).as_status(), 143);
    EXPECT_EQ(ExitInfo({false, 255}).as_status(), 255);
}
