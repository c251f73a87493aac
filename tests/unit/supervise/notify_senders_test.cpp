#include "supervise/notify_senders.hpp"

#include <gtest/gtest.h>

#include <chrono>

using preforkctl::supervise::RejectionLog;
using preforkctl::supervise::speaks_for_worker;
using preforkctl::sys::NotifySender;
using namespace std::chrono_literals;

namespace {

constexpr pid_t kWorker = 4000;
constexpr uid_t kUid = 1000;

NotifySender living(pid_t pid, std::vector<pid_t> ancestors, uid_t uid = kUid) {
    return NotifySender{pid, uid, std::move(ancestors)};
}

}  // namespace

TEST(NotifySenders, TheWorkerItselfSpeaksForItself) {
    EXPECT_TRUE(speaks_for_worker(kWorker, kUid, living(kWorker, {1})));
    EXPECT_TRUE(speaks_for_worker(kWorker, kUid, NotifySender{kWorker, kUid, std::nullopt}));
}

TEST(NotifySenders, AChildOrGrandchildOfTheWorkerSpeaksForIt) {
    EXPECT_TRUE(speaks_for_worker(kWorker, kUid, living(4001, {kWorker, 1})));
    EXPECT_TRUE(speaks_for_worker(kWorker, kUid, living(4005, {4003, 4001, kWorker, 1})));
    // Also when it runs as another user (a server dropping privileges in its children).
    EXPECT_TRUE(speaks_for_worker(kWorker, kUid, living(4001, {kWorker, 1}, 33)));
}

TEST(NotifySenders, ALivingProcessOutsideTheWorkersTreeDoesNotEvenAsTheSameUser) {
    EXPECT_FALSE(speaks_for_worker(kWorker, kUid, living(5000, {4999, 1})));
    EXPECT_FALSE(speaks_for_worker(kWorker, kUid, living(5000, {})));
    // A sibling worker, or preforkctl's own children in general.
    EXPECT_FALSE(speaks_for_worker(kWorker, kUid, living(4100, {3000})));
}

TEST(NotifySenders, ASenderAlreadyGoneCountsOnlyWhenItRanAsTheWorkersUser) {
    EXPECT_TRUE(speaks_for_worker(kWorker, kUid, NotifySender{4001, kUid, std::nullopt}));
    EXPECT_FALSE(speaks_for_worker(kWorker, kUid, NotifySender{4001, 0, std::nullopt}));
    EXPECT_FALSE(speaks_for_worker(kWorker, kUid, NotifySender{4001, 65534, std::nullopt}));
}

TEST(NotifySenders, ASenderTheKernelDidNotNameDoesNot) {
    EXPECT_FALSE(speaks_for_worker(kWorker, kUid, NotifySender{0, kUid, std::nullopt}));
    EXPECT_FALSE(speaks_for_worker(kWorker, kUid, NotifySender{0, kUid, std::vector<pid_t>{kWorker}}));
}

TEST(RejectionLog, LogsTheFirstAtOnceThenOneLinePerIntervalCountingTheQuietOnes) {
    RejectionLog log(10s);
    const std::chrono::steady_clock::time_point start{};
    EXPECT_EQ(log.note(start + 1s), 1);
    for (int i = 0; i < 500; ++i) EXPECT_EQ(log.note(start + 2s), 0);
    EXPECT_EQ(log.note(start + 10s), 0);
    EXPECT_EQ(log.note(start + 11s), 502) << "500 + the one at 10 s + this one";
    EXPECT_EQ(log.note(start + 30s), 1);
}
