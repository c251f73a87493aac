#include "supervise/restart_policy.hpp"

#include <gtest/gtest.h>

#include <csignal>

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

TEST(RestartPolicy, SuccessExitCountsAsSuccessForOnFailureAndNothingElse) {
    plan::RestartSpec s = spec();
    s.when = plan::RestartWhen::on_failure;
    s.success.codes.set(143);
    s.success.signals.set(SIGTERM);
    RestartHistory history;
    EXPECT_TRUE(is_success(s, ExitInfo{false, 143}));
    EXPECT_TRUE(is_success(s, ExitInfo{true, SIGTERM}));
    EXPECT_TRUE(is_success(s, clean));
    EXPECT_FALSE(is_success(s, ExitInfo{true, SIGKILL}));
    EXPECT_FALSE(is_success(s, ExitInfo{false, 15})) << "TERM names the signal, not exit code 15";
    EXPECT_EQ(decide_restart(s, history, ExitInfo{false, 143}, 0ms, {}).verdict, Verdict::stay_down);
    EXPECT_EQ(decide_restart(s, history, ExitInfo{true, SIGTERM}, 0ms, {}).verdict, Verdict::stay_down);
    EXPECT_EQ(decide_restart(s, history, ExitInfo{false, 142}, 0ms, {}).verdict, Verdict::restart);
    s.when = plan::RestartWhen::always;
    EXPECT_EQ(decide_restart(s, history, ExitInfo{false, 143}, 0ms, {}).verdict, Verdict::restart)
        << "a success is restarted by --restart always";
}

TEST(RestartPolicy, PreventKeepsTheSlotDownWhateverRestartSays) {
    plan::RestartSpec s = spec();
    s.prevent.codes.set(3);
    s.prevent.signals.set(SIGUSR2);
    for (auto when : {plan::RestartWhen::always, plan::RestartWhen::on_failure, plan::RestartWhen::never}) {
        s.when = when;
        RestartHistory history;
        const RestartDecision code = decide_restart(s, history, ExitInfo{false, 3}, 0ms, {});
        EXPECT_EQ(code.verdict, Verdict::stay_down);
        EXPECT_EQ(code.reason, "--restart-prevent");
        EXPECT_EQ(decide_restart(s, history, ExitInfo{true, SIGUSR2}, 0ms, {}).verdict, Verdict::stay_down);
        EXPECT_TRUE(history.recent.empty()) << "a prevented restart is no restart";
    }
    s.when = plan::RestartWhen::always;
    RestartHistory history;
    EXPECT_EQ(decide_restart(s, history, ExitInfo{false, 4}, 0ms, {}).verdict, Verdict::restart);
    EXPECT_EQ(decide_restart(s, history, std::nullopt, 0ms, {}).verdict, Verdict::restart)
        << "a failed start is not an exit status the lists can name";
}

TEST(RestartPolicy, ForceRestartsEvenWithOnFailureOrNeverAndStillObeysBackoffAndThreshold) {
    plan::RestartSpec s = spec();
    s.max_restarts = 2;
    s.force.codes.set(0);
    s.force.signals.set(SIGTERM);
    s.when = plan::RestartWhen::never;
    RestartHistory history;
    TimePoint now{};
    RestartDecision first = decide_restart(s, history, clean, 0ms, now);
    EXPECT_EQ(first.verdict, Verdict::restart);
    EXPECT_EQ(first.delay, 100ms);
    EXPECT_EQ(first.reason, "--restart-force");
    EXPECT_EQ(decide_restart(s, history, ExitInfo{true, SIGTERM}, 0ms, now + 1s).delay, 200ms);
    EXPECT_EQ(decide_restart(s, history, clean, 0ms, now + 2s).verdict, Verdict::threshold);
    EXPECT_EQ(decide_restart(s, history, crash, 0ms, now + 3s).verdict, Verdict::stay_down)
        << "--restart never still holds for what is not forced";
    s.when = plan::RestartWhen::on_failure;
    RestartHistory fresh;
    EXPECT_EQ(decide_restart(s, fresh, clean, 0ms, now).verdict, Verdict::restart) << "0 is forced";
}

TEST(RestartPolicy, QuickExitsWithStatusZeroCountTowardTheThresholdUnderAlways) {
    plan::RestartSpec s = spec();
    s.max_restarts = 3;
    RestartHistory history;
    TimePoint now{};
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(decide_restart(s, history, clean, 1ms, now).verdict, Verdict::restart) << i;
        now += 200ms;
    }
    EXPECT_EQ(decide_restart(s, history, clean, 1ms, now).verdict, Verdict::threshold);
}
