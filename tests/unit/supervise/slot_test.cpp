#include "supervise/slot.hpp"

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
    s.max_restarts = 2;
    return s;
}

Transition step(const SlotState& state, const Event& event, TimePoint now = {}, plan::RestartSpec s = spec()) {
    return transition(state, event, now, s, SIGTERM);
}

template <class C>
int count(const std::vector<Command>& commands) {
    int n = 0;
    for (const Command& c : commands) n += std::holds_alternative<C>(c) ? 1 : 0;
    return n;
}

SlotState running(int pid = 42) {
    return step(step(SlotState{}, event::Start{}).state, event::Spawned{pid}).state;
}

}  // namespace

TEST(Slot, StartSpawnsAndSpawnedRuns) {
    auto t = step(SlotState{}, event::Start{});
    EXPECT_EQ(t.state.phase, Phase::starting);
    EXPECT_EQ(count<command::Spawn>(t.commands), 1);
    t = step(t.state, event::Spawned{42});
    EXPECT_EQ(t.state.phase, Phase::running);
    EXPECT_EQ(t.state.pid, 42);
}

TEST(Slot, CrashArmsARestartTimerAndTheTimerSpawnsAgain) {
    auto t = step(running(), event::Exited{{true, SIGKILL}});
    EXPECT_EQ(t.state.phase, Phase::waiting_restart);
    ASSERT_EQ(count<command::ArmRestart>(t.commands), 1);
    EXPECT_EQ(t.state.pid, 0);
    t = step(t.state, event::RestartDue{});
    EXPECT_EQ(t.state.phase, Phase::starting);
    EXPECT_EQ(count<command::Spawn>(t.commands), 1);
}

TEST(Slot, StopSignalsTheRunningWorkerWithStopSignalAndCont) {
    auto t = step(running(), event::Stop{});
    EXPECT_EQ(t.state.phase, Phase::stopping);
    ASSERT_EQ(t.commands.size(), 2u);
    EXPECT_EQ(std::get<command::SignalWorker>(t.commands[0]).signal, SIGTERM);
    EXPECT_EQ(std::get<command::SignalWorker>(t.commands[1]).signal, SIGCONT);
    t = step(t.state, event::Kill{});
    EXPECT_EQ(std::get<command::SignalWorker>(t.commands.at(0)).signal, SIGKILL);
    t = step(t.state, event::Exited{{true, SIGKILL}});
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_TRUE(is_settled(t.state));
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 0) << "a stopped worker is not restarted";
}

TEST(Slot, StopWhileWaitingToRestartCancelsTheTimer) {
    auto t = step(running(), event::Exited{{false, 1}});
    t = step(t.state, event::Stop{});
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_EQ(count<command::CancelRestart>(t.commands), 1);
    t = step(t.state, event::RestartDue{});
    EXPECT_EQ(count<command::Spawn>(t.commands), 0);
}

TEST(Slot, ThresholdWithExitAsksToStopEverything) {
    SlotState state = running();
    Transition t{};
    for (int i = 0; i < 3; ++i) {
        t = step(state, event::Exited{{false, 1}}, TimePoint{} + i * 1s);
        state = step(step(t.state, event::RestartDue{}).state, event::Spawned{100 + i}).state;
    }
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_EQ(count<command::ThresholdExceeded>(t.commands), 1);
}

TEST(Slot, ThresholdWithParkLeavesTheSlotParked) {
    plan::RestartSpec s = spec();
    s.on_threshold = plan::OnThreshold::park;
    s.max_restarts = 0;
    auto t = step(running(), event::Exited{{false, 1}}, {}, s);
    EXPECT_EQ(t.state.phase, Phase::parked);
    EXPECT_EQ(count<command::ThresholdExceeded>(t.commands), 0);
    EXPECT_TRUE(is_settled(t.state));
}

TEST(Slot, SpawnFailureIsAFailedStartWithBackoffNotACrash) {
    auto t = step(step(SlotState{}, event::Start{}).state, event::SpawnFailed{"fork: Resource temporarily unavailable"});
    EXPECT_EQ(t.state.phase, Phase::waiting_restart);
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 1);
}

TEST(Slot, RestartNeverEndsTheSlot) {
    plan::RestartSpec s = spec();
    s.when = plan::RestartWhen::never;
    auto t = step(running(), event::Exited{{false, 0}}, {}, s);
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_EQ(t.state.last_exit.value, 0);
}
