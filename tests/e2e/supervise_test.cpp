// Supervision basics (SPEC §6, §7): restart, stop, exit statuses, no zombies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

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

TEST(Supervise, WorkerIgnoringTermIsKilledAfterTheStopTimeout) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--stop-timeout", "300ms", "--", PROBE_WORKER_BIN, "--ignore-term"}),
            {{"PROBE_DIR=" + dir.path()}});
    std::vector<Report> reports;
    ASSERT_TRUE(wait_until([&] { return (reports = read_reports(dir.path())).size() == 1; })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0);
    EXPECT_THAT(run.err(), HasSubstr("stop timeout of 300ms passed"));
    EXPECT_FALSE(is_alive(std::stoi(reports[0].at("pid"))));
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

TEST(Supervise, SigkillOfPreforkctlTakesItsWorkersDown) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    std::vector<Report> reports;
    ASSERT_TRUE(wait_until([&] { return (reports = read_reports(dir.path())).size() == 2; })) << run.err();
    run.signal(SIGKILL);
    run.wait();
    for (const Report& report : reports) {
        const pid_t pid = std::stoi(report.at("pid"));
        EXPECT_TRUE(wait_until([&] { return !is_alive(pid); }, 1s)) << "worker " << pid << " outlived preforkctl";
    }
}

TEST(Supervise, CrashLoopHitsTheThresholdAndExitsFive) {
    Process run(preforkctl({"-n", "1", "--backoff", "10ms..20ms", "--max-restarts", "3", "--", PROBE_WORKER_BIN,
                        "--exit", "1"}));
    EXPECT_EQ(run.wait(), 5) << run.err();
    EXPECT_EQ(lines_with(run.err(), "restarting in").size(), 3u) << run.err();
    EXPECT_THAT(run.err(), HasSubstr("more than 3 restarts in 1m, giving up"));
}

TEST(Supervise, ParkedSlotStaysDownWhileOthersServe) {
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

TEST(Supervise, BackoffDelaysGrowBetweenRestarts) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--backoff", "100ms..400ms", "--max-restarts", "4", "--", PROBE_WORKER_BIN,
                        "--exit", "1"}),
            {{"PROBE_DIR=" + dir.path()}});
    EXPECT_EQ(run.wait(), 5);
    const auto delays = lines_with(run.err(), "restarting in");
    ASSERT_EQ(delays.size(), 4u);
    EXPECT_THAT(delays[0], HasSubstr("restarting in 100ms"));
    EXPECT_THAT(delays[1], HasSubstr("restarting in 200ms"));
    EXPECT_THAT(delays[2], HasSubstr("restarting in 400ms"));
    EXPECT_THAT(delays[3], HasSubstr("restarting in 400ms"));
}

TEST(Supervise, OrphanedGrandchildrenAreReparentedToPreforkctlAndReaped) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--", PROBE_WORKER_BIN, "--orphans", "5"}), {{"PROBE_DIR=" + dir.path()}});
    std::vector<Report> reports;
    ASSERT_TRUE(wait_until([&] { return (reports = read_reports(dir.path())).size() == 1; })) << run.err();
    const pid_t worker = std::stoi(reports[0].at("pid"));
    std::vector<pid_t> orphans;
    // Double-forked grandchildren lose their parent and land on preforkctl, the child subreaper.
    ASSERT_TRUE(wait_until([&] {
        orphans.clear();
        for (pid_t pid : descendants(run.pid())) {
            if (pid != worker && parent_of(pid) == run.pid()) orphans.push_back(pid);
        }
        return orphans.size() == 5;
    })) << orphans.size();
    for (pid_t orphan : orphans) ::kill(orphan, SIGKILL);
    EXPECT_TRUE(wait_until([&] {
        for (pid_t orphan : orphans) {
            if (parent_of(orphan) == run.pid()) return false;  // still there, as a process or a zombie
        }
        return true;
    }));
    EXPECT_EQ(zombie_children(run.pid()), 0);
    EXPECT_TRUE(is_alive(worker));
}
