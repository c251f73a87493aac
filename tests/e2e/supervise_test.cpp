// Supervision basics (SPEC §6, §7): restart, stop, exit statuses, no zombies. The PID 1 / subreaper
// behaviours (reaping, forwarding, stop, backoff measured from outside) are in pid1_test.cpp, run in both modes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

TEST(Supervise, KilledWorkerIsReplacedInTheSameSlot) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    std::vector<Report> reports;
    ASSERT_TRUE(wait_until([&] { return (reports = read_reports(dir.path())).size() == 2; })) << run.err();
    const Report victim = reports[0];
    ::kill(std::stoi(victim.at("pid")), SIGKILL);
    ASSERT_TRUE(wait_until([&] { return (reports = read_reports(dir.path())).size() == 3; })) << run.err();
    int replacements = 0;
    for (const Report& report : reports) {
        if (report.at("pid") != victim.at("pid") && report.at("env.PREFORK_SLOT") == victim.at("env.PREFORK_SLOT")) {
            ++replacements;
            EXPECT_TRUE(is_alive(std::stoi(report.at("pid"))));
        }
    }
    EXPECT_EQ(replacements, 1);
    EXPECT_THAT(run.err(), HasSubstr("was killed by SIGKILL; restarting in"));
    EXPECT_FALSE(is_alive(std::stoi(victim.at("pid"))));
    EXPECT_EQ(zombie_children(run.pid()), 0);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << "a requested stop is clean even after a worker was killed";
}

TEST(Supervise, TermStopsEveryWorkerLeavesNoZombieAndExitsZero) {
    TempDir dir;
    Process run(preforkctl({"-n", "3", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    std::vector<Report> reports;
    ASSERT_TRUE(wait_until([&] { return (reports = read_reports(dir.path())).size() == 3; })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    for (const Report& report : reports) {
        EXPECT_FALSE(is_alive(std::stoi(report.at("pid"))));
    }
}

TEST(Supervise, SecondTermKillsAtOnce) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--stop-timeout", "1m", "--", PROBE_WORKER_BIN, "--ignore-term"}),
            {{"PROBE_DIR=" + dir.path()}});
    ASSERT_TRUE(wait_until([&] { return read_reports(dir.path()).size() == 1; })) << run.err();
    run.signal(SIGTERM);
    ASSERT_TRUE(wait_until([&] { return run.err().find("stopping every worker") != std::string::npos; }));
    run.signal(SIGINT);
    EXPECT_EQ(run.wait(5s), 0) << run.err();
    EXPECT_THAT(run.err(), HasSubstr("again: killing every worker now"));
}

TEST(Supervise, CrashLoopHitsTheThresholdAndExitsFive) {
    Process run(preforkctl({"-n", "1", "--backoff", "10ms..20ms", "--max-restarts", "3", "--", PROBE_WORKER_BIN,
                        "--exit", "1"}));
    EXPECT_EQ(run.wait(), 5) << run.err();
    EXPECT_EQ(lines_with(run.err(), "restarting in").size(), 3u) << run.err();
    EXPECT_THAT(run.err(), HasSubstr("more than 3 restarts in 1m, giving up"));
}

TEST(Supervise, WhenTheOnlySlotIsParkedTheWorkersFailureIsTheExitStatus) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--backoff", "10ms..10ms", "--max-restarts", "2", "--on-threshold", "park", "--",
                        PROBE_WORKER_BIN, "--exit", "1"}),
            {{"PROBE_DIR=" + dir.path()}});
    // The only slot is parked: with nothing left to run, preforkctl ends with the worker's failure status.
    EXPECT_EQ(run.wait(), 1) << run.err();
    EXPECT_THAT(run.err(), HasSubstr("slot parked"));
}

TEST(Supervise, RestartNeverPassesTheWorkersExitStatusThrough) {
    Process run(preforkctl({"-n", "2", "--restart", "never", "--", PROBE_WORKER_BIN, "--exit", "7"}));
    EXPECT_EQ(run.wait(), 7) << run.err();
    Process clean(preforkctl({"-n", "2", "--restart", "on-failure", "--", PROBE_WORKER_BIN, "--exit", "0"}));
    EXPECT_EQ(clean.wait(), 0) << clean.err();
}

// Research §6 B32 with `ulimit -n`: when preforkctl runs out of descriptors, a restart is a failed start
// (reported, backed off) and not a crash; once descriptors are available again the slot comes back.
TEST(Supervise, RunningOutOfDescriptorsIsAFailedStartAndTheSlotRecovers) {
    if (kSanitizedBuild) GTEST_SKIP() << "the sanitizers' run-time needs descriptors of its own to check memory";
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--backoff", "100ms..100ms", "--max-restarts", "1000", "--", PROBE_WORKER_BIN}),
                {{"PROBE_DIR=" + dir.path()}});
    std::vector<Report> reports;
    ASSERT_TRUE(wait_until([&] { return (reports = read_reports(dir.path())).size() == 1; })) << run.err();
    rlimit before{};
    ASSERT_EQ(::prlimit(run.pid(), RLIMIT_NOFILE, nullptr, &before), 0);
    const rlimit none{3, before.rlim_max};  // fds 0-2 only: nothing new can be opened
    ASSERT_EQ(::prlimit(run.pid(), RLIMIT_NOFILE, &none, nullptr), 0);
    ::kill(std::stoi(reports[0].at("pid")), SIGKILL);
    ASSERT_TRUE(wait_until([&] { return lines_with(run.err(), "Too many open files; restarting in 100ms").size() >= 2; }))
        << run.err();
    EXPECT_TRUE(is_alive(run.pid()));
    EXPECT_EQ(read_reports(dir.path()).size(), 1u);
    ASSERT_EQ(::prlimit(run.pid(), RLIMIT_NOFILE, &before, nullptr), 0);
    EXPECT_TRUE(wait_until([&] { return read_reports(dir.path()).size() == 2; })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}
