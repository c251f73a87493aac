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

SlotState ready(int pid = 42) { return step(running(pid), event::Ready{pid}).state; }

// A ready worker 42 being replaced by worker 43, which is not ready yet.
SlotState replacing() { return step(step(ready(), event::Replace{}).state, event::Spawned{43}).state; }

template <class C>
std::vector<C> all_of(const std::vector<Command>& commands) {
    std::vector<C> found;
    for (const Command& c : commands) {
        if (const C* one = std::get_if<C>(&c)) found.push_back(*one);
    }
    return found;
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
    auto t = step(running(), event::Exited{42, {true, SIGKILL}});
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
    t = step(t.state, event::Exited{42, {true, SIGKILL}});
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_TRUE(is_settled(t.state));
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 0) << "a stopped worker is not restarted";
}

TEST(Slot, StopWhileWaitingToRestartCancelsTheTimer) {
    auto t = step(running(), event::Exited{42, {false, 1}});
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
        t = step(state, event::Exited{state.pid, {false, 1}}, TimePoint{} + i * 1s);
        state = step(step(t.state, event::RestartDue{}).state, event::Spawned{100 + i}).state;
    }
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_EQ(count<command::ThresholdExceeded>(t.commands), 1);
}

TEST(Slot, ThresholdWithParkLeavesTheSlotParked) {
    plan::RestartSpec s = spec();
    s.on_threshold = plan::OnThreshold::park;
    s.max_restarts = 0;
    auto t = step(running(), event::Exited{42, {false, 1}}, {}, s);
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
    auto t = step(running(), event::Exited{42, {false, 0}}, {}, s);
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_EQ(t.state.last_exit.value, 0);
}

TEST(Slot, ANewWorkerIsAwaitedUntilReady) {
    auto t = step(step(SlotState{}, event::Start{}).state, event::Spawned{42});
    ASSERT_EQ(all_of<command::AwaitReady>(t.commands).size(), 1u);
    EXPECT_EQ(all_of<command::AwaitReady>(t.commands)[0].pid, 42);
    EXPECT_FALSE(t.state.ready);
    EXPECT_FALSE(step(t.state, event::Ready{7}).state.ready) << "readiness of another pid is ignored";
    EXPECT_TRUE(step(t.state, event::Ready{42}).state.ready);
}

TEST(Slot, RollingRestartStopsThePreviousWorkerOnlyOnceTheNewOneIsReady) {
    auto t = step(ready(), event::Replace{});
    EXPECT_EQ(t.state.previous_pid, 42);
    EXPECT_TRUE(t.state.replacing);
    EXPECT_EQ(count<command::Spawn>(t.commands), 1);
    EXPECT_TRUE(all_of<command::SignalWorker>(t.commands).empty()) << "the old worker serves until the new is ready";
    t = step(t.state, event::Spawned{43});
    EXPECT_TRUE(all_of<command::SignalWorker>(t.commands).empty());
    t = step(t.state, event::Ready{43});
    const auto signals = all_of<command::SignalWorker>(t.commands);
    ASSERT_EQ(signals.size(), 2u);
    EXPECT_EQ(signals[0].pid, 42);
    EXPECT_EQ(signals[0].signal, SIGTERM);
    EXPECT_EQ(signals[1].signal, SIGCONT);
    EXPECT_EQ(all_of<command::ArmRetireDeadline>(t.commands).at(0).pid, 42);
    EXPECT_TRUE(all_of<command::ReplaceDone>(t.commands).at(0).replaced);
    t = step(t.state, event::Exited{42, {false, 0}});
    EXPECT_EQ(t.state.phase, Phase::running);
    EXPECT_EQ(t.state.pid, 43);
    EXPECT_EQ(t.state.previous_pid, 0);
    EXPECT_TRUE(t.state.draining.empty());
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 0) << "a retired worker is not restarted";
    EXPECT_TRUE(t.state.history.recent.empty()) << "a rolling restart is not a crash";
}

TEST(Slot, ANewWorkerThatDiesBeforeReadyLeavesThePreviousOneServing) {
    auto t = step(replacing(), event::Exited{43, {false, 1}});
    EXPECT_EQ(t.state.phase, Phase::running);
    EXPECT_EQ(t.state.pid, 42);
    EXPECT_TRUE(t.state.ready);
    EXPECT_EQ(t.state.previous_pid, 0);
    EXPECT_FALSE(t.state.replacing);
    EXPECT_FALSE(all_of<command::ReplaceDone>(t.commands).at(0).replaced);
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 0);
    EXPECT_TRUE(all_of<command::SignalWorker>(t.commands).empty());
}

TEST(Slot, ANewWorkerThatCannotStartLeavesThePreviousOneServing) {
    auto t = step(step(ready(), event::Replace{}).state, event::SpawnFailed{"fork: Resource temporarily unavailable"});
    EXPECT_EQ(t.state.pid, 42);
    EXPECT_EQ(t.state.phase, Phase::running);
    EXPECT_FALSE(all_of<command::ReplaceDone>(t.commands).at(0).replaced);
}

TEST(Slot, ReplacingASlotThatIsDownIsASkippedStepButANotYetReadyWorkerIsReplaced) {
    auto t = step(step(ready(), event::Exited{42, {false, 1}}).state, event::Replace{});
    EXPECT_EQ(t.state.phase, Phase::waiting_restart);
    EXPECT_EQ(count<command::Spawn>(t.commands), 0);
    EXPECT_TRUE(all_of<command::ReplaceDone>(t.commands).at(0).replaced);
    t = step(running(), event::Replace{});  // started but not ready yet: it runs the old generation
    EXPECT_EQ(count<command::Spawn>(t.commands), 1);
    EXPECT_EQ(t.state.previous_pid, 42);
}

TEST(Slot, NotReadyInTimeKillsTheWorkerAndCountsAsAFailedStart) {
    auto t = step(running(), event::ReadyTimeout{42});
    ASSERT_EQ(all_of<command::SignalWorker>(t.commands).size(), 1u);
    EXPECT_EQ(all_of<command::SignalWorker>(t.commands)[0].signal, SIGKILL);
    t = step(t.state, event::Exited{42, {true, SIGKILL}});
    EXPECT_EQ(t.state.phase, Phase::waiting_restart);
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 1);
    EXPECT_TRUE(all_of<command::SignalWorker>(step(ready(), event::ReadyTimeout{42}).commands).empty())
        << "a timeout after READY=1 is stale";
}

TEST(Slot, StopDuringARollingRestartStopsBothWorkersAndEndsWhenBothAreGone) {
    SlotState state = step(replacing(), event::Ready{43}).state;  // 42 retiring, 43 serving
    auto t = step(state, event::Stop{});
    std::vector<int> signalled;
    for (const auto& s : all_of<command::SignalWorker>(t.commands)) {
        if (s.signal == SIGTERM) signalled.push_back(s.pid);
    }
    EXPECT_EQ(signalled, (std::vector<int>{43, 42}));
    t = step(t.state, event::Exited{43, {false, 0}});
    EXPECT_FALSE(is_settled(t.state)) << "the previous worker is still there";
    t = step(t.state, event::Exited{42, {false, 0}});
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_TRUE(is_settled(t.state));
}

TEST(Slot, APreviousWorkerOutlivingTheStopTimeoutIsKilled) {
    SlotState state = step(replacing(), event::Ready{43}).state;
    auto t = step(state, event::RetireOverdue{42});
    ASSERT_EQ(all_of<command::SignalWorker>(t.commands).size(), 1u);
    EXPECT_EQ(all_of<command::SignalWorker>(t.commands)[0].pid, 42);
    EXPECT_EQ(all_of<command::SignalWorker>(t.commands)[0].signal, SIGKILL);
    state = step(state, event::Exited{42, {false, 0}}).state;
    EXPECT_TRUE(all_of<command::SignalWorker>(step(state, event::RetireOverdue{42}).commands).empty());
}

TEST(Slot, RestartPreventEndsTheSlotAndSaysWhy) {
    plan::RestartSpec s = spec();
    s.prevent.codes.set(3);
    auto t = step(running(), event::Exited{42, {false, 3}}, {}, s);
    EXPECT_EQ(t.state.phase, Phase::done);
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 0);
    const auto logs = all_of<command::Log>(t.commands);
    ASSERT_EQ(logs.size(), 1u);
    EXPECT_EQ(logs[0].text, "worker 42 exited with status 3; not restarted (--restart-prevent)");
    EXPECT_EQ(logs[0].level, command::Level::warning);
}

TEST(Slot, RestartForceRestartsUnderNeverAndSuccessExitIsLoggedAsInfo) {
    plan::RestartSpec s = spec();
    s.when = plan::RestartWhen::never;
    s.force.signals.set(SIGTERM);
    s.success.signals.set(SIGTERM);
    auto t = step(running(), event::Exited{42, {true, SIGTERM}}, {}, s);
    EXPECT_EQ(t.state.phase, Phase::waiting_restart);
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 1);
    const auto logs = all_of<command::Log>(t.commands);
    ASSERT_EQ(logs.size(), 1u);
    EXPECT_EQ(logs[0].text, "worker 42 was killed by SIGTERM; restarting in 100ms (--restart-force)");
    EXPECT_EQ(logs[0].level, command::Level::info);
}

TEST(Slot, AWorkerThatExitsZeroAtOnceIsParkedAtTheThresholdUnderAlways) {
    plan::RestartSpec s = spec();
    s.on_threshold = plan::OnThreshold::park;
    SlotState state = running();
    Transition t{};
    TimePoint now{};
    for (int i = 0; i < 3; ++i) {
        t = step(state, event::Exited{state.pid, {false, 0}}, now + 1ms, s);
        now += 1s;
        state = step(step(t.state, event::RestartDue{}, now, s).state, event::Spawned{100 + i}, now, s).state;
    }
    EXPECT_EQ(t.state.phase, Phase::parked);
}

// HUP -> new worker 43 ready -> previous 42 draining -> 43 crashes: 42 is still a worker of the slot until it
// is reaped, and what follows is an ordinary restart, not a rolling step.
TEST(Slot, ACrashAfterARollingStepIsAnOrdinaryRestartAndTheDrainingWorkerIsStillWaitedFor) {
    SlotState state = step(replacing(), event::Ready{43}).state;
    EXPECT_EQ(state.draining, (std::vector<int>{42}));
    auto t = step(state, event::Exited{43, {true, SIGSEGV}});
    EXPECT_EQ(t.state.phase, Phase::waiting_restart);
    EXPECT_FALSE(t.state.replacing);
    EXPECT_EQ(t.state.previous_pid, 0) << "42 is not kept as the slot's worker: it was told to stop";
    EXPECT_TRUE(has_worker(t.state, 42));
    EXPECT_TRUE(all_of<command::ReplaceDone>(t.commands).empty());

    // Stopped while waiting to restart: the slot is done but not settled until 42 is reaped, and a kill
    // reaches 42 too.
    auto stopped = step(t.state, event::Stop{});
    EXPECT_EQ(stopped.state.phase, Phase::done);
    EXPECT_FALSE(is_settled(stopped.state));
    const auto kills = all_of<command::SignalWorker>(step(stopped.state, event::Kill{}).commands);
    ASSERT_EQ(kills.size(), 1u);
    EXPECT_EQ(kills[0].pid, 42);
    EXPECT_EQ(kills[0].signal, SIGKILL);
    EXPECT_TRUE(is_settled(step(stopped.state, event::Exited{42, {false, 0}}).state));

    // Restarted instead: the new worker 44 failing before it is ready goes through the restart policy; 42
    // is not brought back.
    state = step(step(t.state, event::RestartDue{}).state, event::Spawned{44}).state;
    EXPECT_FALSE(state.replacing);
    t = step(state, event::Exited{44, {false, 1}});
    EXPECT_EQ(t.state.phase, Phase::waiting_restart);
    EXPECT_EQ(t.state.pid, 0);
    EXPECT_TRUE(all_of<command::ReplaceDone>(t.commands).empty());
    EXPECT_EQ(t.state.draining, (std::vector<int>{42}));
}

TEST(Slot, ARollingRestartReachesAWorkerWhosePredecessorIsStillDraining) {
    SlotState state = step(replacing(), event::Ready{43}).state;  // 42 draining
    auto t = step(state, event::Replace{});
    EXPECT_EQ(count<command::Spawn>(t.commands), 1);
    EXPECT_EQ(t.state.previous_pid, 43);
    t = step(step(t.state, event::Spawned{44}).state, event::Ready{44});
    EXPECT_EQ(t.state.draining, (std::vector<int>{42, 43}));
    EXPECT_TRUE(all_of<command::ReplaceDone>(t.commands).at(0).replaced);
    EXPECT_TRUE(all_of<command::SignalWorker>(step(t.state, event::RetireOverdue{42}).commands).size() == 1u);
}

TEST(Slot, ThePreviousWorkerDyingDuringItsReplacementLeavesTheNewOneAndTheStepEndsWhenItIsReady) {
    auto t = step(replacing(), event::Exited{42, {true, SIGKILL}});
    EXPECT_EQ(t.state.previous_pid, 0);
    EXPECT_EQ(t.state.pid, 43);
    EXPECT_EQ(count<command::ArmRestart>(t.commands), 0);
    t = step(t.state, event::Ready{43});
    EXPECT_TRUE(all_of<command::ReplaceDone>(t.commands).at(0).replaced);
    EXPECT_TRUE(all_of<command::SignalWorker>(t.commands).empty());
}

TEST(Slot, ARollingRestartStartsAParkedSlotAgainWithAFreshThresholdHistory) {
    plan::RestartSpec s = spec();
    s.on_threshold = plan::OnThreshold::park;
    s.max_restarts = 0;
    auto t = step(running(), event::Exited{42, {false, 1}}, {}, s);
    ASSERT_EQ(t.state.phase, Phase::parked);
    t = step(t.state, event::Replace{}, {}, s);
    EXPECT_EQ(t.state.phase, Phase::starting);
    EXPECT_EQ(count<command::Spawn>(t.commands), 1);
    EXPECT_TRUE(t.state.history.recent.empty());
    EXPECT_TRUE(all_of<command::ReplaceDone>(t.commands).empty()) << "the step ends when the worker is ready";
    t = step(step(t.state, event::Spawned{50}, {}, s).state, event::Ready{50}, {}, s);
    EXPECT_TRUE(all_of<command::ReplaceDone>(t.commands).at(0).replaced);

    // Still broken: it fails before it is ready, the rolling restart stops there, and the slot is parked
    // again by the threshold (0 restarts allowed here).
    t = step(step(step(running(), event::Exited{42, {false, 1}}, {}, s).state, event::Replace{}, {}, s).state,
             event::SpawnFailed{"cannot execute ./server: No such file or directory"}, {}, s);
    EXPECT_FALSE(all_of<command::ReplaceDone>(t.commands).at(0).replaced);
    EXPECT_EQ(t.state.phase, Phase::parked);
}

// An upgrade hands each slot's phase over by name (upgrade/state.hpp): every phase reads back as itself.
TEST(Slot, EveryPhaseReadsBackFromItsName) {
    for (const Phase phase : {Phase::idle, Phase::starting, Phase::running, Phase::waiting_restart, Phase::stopping,
                              Phase::parked, Phase::done}) {
        EXPECT_EQ(phase_from_text(to_text(phase)), phase) << to_text(phase);
    }
    EXPECT_FALSE(phase_from_text("sleeping").has_value());
    EXPECT_FALSE(phase_from_text("").has_value());
}
