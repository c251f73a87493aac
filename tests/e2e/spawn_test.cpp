// What every worker gets (SPEC §3): fds, LISTEN_* protocol, slot environment, signal state, affinity.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <set>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

namespace {

std::string online_cpus() {
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    return std::to_string(CPU_COUNT(&set));
}

}  // namespace

TEST(Spawn, EachOfThreeWorkersHasExactlyFds0To3AndItsOwnListenPid) {
    TempDir dir;
    Process run(preforkctl({"-n", "3", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 3);
    ASSERT_EQ(reports.size(), 3u) << run.err();
    std::set<std::string> slots;
    for (const Report& report : reports) {
        EXPECT_EQ(report.at("fds"), "0,1,2,3");
        EXPECT_EQ(report.at("env.LISTEN_FDS"), "1");
        EXPECT_EQ(report.at("env.LISTEN_PID"), report.at("pid"));
        EXPECT_EQ(report.at("env.PREFORK_WORKERS"), "3");
        EXPECT_EQ(report.at("fd3_accepting"), "1");
        EXPECT_EQ(report.at("fd3_cloexec"), "0");
        EXPECT_EQ(report.at("pgid"), report.at("pid")) << "each worker leads its own process group";
        EXPECT_EQ(report.at("ppid"), std::to_string(run.pid()));
        slots.insert(report.at("env.PREFORK_SLOT"));
    }
    EXPECT_EQ(slots, (std::set<std::string>{"0", "1", "2"}));
}

TEST(Spawn, LeakedDescriptorsAndInheritedListenPidfdidDoNotReachWorkers) {
    TempDir dir;
    Options options{{"PROBE_DIR=" + dir.path(), "LISTEN_PIDFDID=12345", "LISTEN_FDNAMES=stale"}};
    options.leak_fd = true;
    Process run(preforkctl({"-n", "1", "-l", "127.0.0.1:0,name=web", "--", PROBE_WORKER_BIN}), options);
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << run.err();
    EXPECT_EQ(reports[0].at("fds"), "0,1,2,3");
    EXPECT_EQ(reports[0].count("env.LISTEN_PIDFDID"), 0u);
    EXPECT_EQ(reports[0].at("env.LISTEN_FDNAMES"), "web");
}

TEST(Spawn, WorkersGetCleanSignalStateEvenWhenPreforkctlInheritedBlockedAndIgnoredSignals) {
    TempDir dir;
    Options options{{"PROBE_DIR=" + dir.path()}};
    options.block_and_ignore_signals = true;
    Process run(preforkctl({"-n", "1", "--", PROBE_WORKER_BIN}), options);
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << run.err();
    EXPECT_EQ(reports[0].at("sigblk"), "0000000000000000");
    EXPECT_EQ(reports[0].at("sigign"), "0000000000000000");
    EXPECT_EQ(reports[0].count("env.LISTEN_FDS"), 0u) << "no listeners, no LISTEN_FDS";
}

TEST(Spawn, AffinityPinsEachWorkerToThePlannedCpu) {
    TempDir dir;
    Process plan(preforkctl({"-n", "2", "--affinity", "--print-plan", "--", PROBE_WORKER_BIN}));
    ASSERT_EQ(plan.wait(), 0);
    std::map<std::string, std::string> planned;  // slot -> cpu
    for (const std::string& line : lines_with(plan.out(), "cpu ")) {
        if (line.starts_with("slot ")) {
            planned[line.substr(5, line.find(':') - 5)] = line.substr(line.rfind(' ') + 1);
        }
    }
    ASSERT_EQ(planned.size(), 2u) << plan.out();

    Process run(preforkctl({"-n", "2", "--affinity", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    for (const Report& report : reports) {
        const std::string slot = report.at("env.PREFORK_SLOT");
        EXPECT_EQ(report.at("affinity"), planned[slot]) << "slot " << slot;
        EXPECT_EQ(report.at("env.PREFORK_CPUS"), planned[slot]);
    }
}

TEST(Spawn, NarrowTasksetAffinityPlansOneWorker) {
    TempDir dir;
    Options options{{"PROBE_DIR=" + dir.path()}};
    options.prefix = {"taskset", "-c", "1"};
    if (online_cpus() == "1") GTEST_SKIP() << "needs two CPUs";
    Process plan(preforkctl({"-n", "auto", "--print-plan", "--", PROBE_WORKER_BIN}), options);
    ASSERT_EQ(plan.wait(), 0) << plan.err();
    EXPECT_THAT(plan.out(), HasSubstr("workers:      1 (auto: sched_getaffinity (1))"));

    Process run(preforkctl({"-n", "auto", "--affinity", "--", PROBE_WORKER_BIN}), options);
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].at("affinity"), "1");
    EXPECT_EQ(reports[0].at("env.PREFORK_WORKERS"), "1");
}

TEST(Spawn, PlaceholdersAreExpandedPerSlotAndOtherBracesKept) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN, "s={slot}/{workers}", "{port}",
                        "{other}"}),
            {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    const std::string port = std::to_string(listening_port(run.err()));
    for (const Report& report : reports) {
        EXPECT_EQ(report.at("argv"), "s=" + report.at("env.PREFORK_SLOT") + "/2 " + port + " {other}");
    }
}

TEST(Spawn, ChdirAndEnvReachTheWorker) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--chdir", "/tmp", "-e", "GREETING=hi", "-e", "PROBE_EXTRA=1", "--",
                        PROBE_WORKER_BIN}),
            {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << run.err();
    EXPECT_EQ(reports[0].at("cwd"), "/tmp");
    EXPECT_EQ(reports[0].at("env.PROBE_EXTRA"), "1");
}

// A14: the worker starts in the caller's working directory (and a relative --chdir is taken from there), while
// preforkctl itself moves to / so that it keeps no file system busy.
TEST(Spawn, WorkersStartInTheCallersDirectoryWhilePreforkctlSitsInRoot) {
    TempDir dir;
    TempDir work;
    ASSERT_EQ(::mkdir((work.path() + "/sub").c_str(), 0755), 0);
    for (const bool relative_chdir : {false, true}) {
        Options options({"PROBE_DIR=" + dir.path()});
        options.prefix = {"env", "-C", work.path()};
        std::vector<std::string> args{"-n", "1"};
        if (relative_chdir) args.insert(args.end(), {"--chdir", "sub"});
        args.insert(args.end(), {"--", PROBE_WORKER_BIN});
        Process run(preforkctl(args), options);
        const auto reports = wait_for_reports(dir.path(), relative_chdir ? 2 : 1);
        ASSERT_EQ(reports.size(), relative_chdir ? 2u : 1u) << run.err();
        std::set<std::string> cwds;
        for (const auto& report : reports) cwds.insert(report.at("cwd"));
        EXPECT_TRUE(cwds.count(relative_chdir ? work.path() + "/sub" : work.path())) << run.err();
        char target[4096] = "";
        const ssize_t length =
            ::readlink(("/proc/" + std::to_string(run.pid()) + "/cwd").c_str(), target, sizeof target - 1);
        ASSERT_GT(length, 0);
        EXPECT_EQ(std::string(target, static_cast<std::size_t>(length)), "/");
        run.signal(SIGTERM);
        EXPECT_EQ(run.wait(), 0) << run.err();
    }
}

// Without close_range (kernels before 5.11, or a seccomp filter refusing it) no inherited descriptor reaches a
// worker either, whatever its number: containers allow descriptors up to 1048575, far above the 65536 that the
// fallback once stopped at. The leaked descriptor is the highest this machine's hard limit allows.
TEST(Spawn, WithoutCloseRangeNoInheritedDescriptorReachesAWorkerWhateverItsNumber) {
    TempDir dir;
    const std::string mark = dir.path() + "/close_range_refused";
    // The shim is not instrumented: a sanitized preforkctl must not insist on its run-time coming first.
    const char* asan = std::getenv("ASAN_OPTIONS");
    ::setenv("ASAN_OPTIONS", (std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0").c_str(), 1);
    Options options{{"PROBE_DIR=" + dir.path(), "LD_PRELOAD=" NO_CLOSE_RANGE_LIB, "NO_CLOSE_RANGE_MARK=" + mark}};
    options.prefix = {"bash", "-c",
                      "ulimit -n \"$(ulimit -Hn)\" && eval \"exec $(( $(ulimit -Hn) - 1 ))</dev/null\" && "
                      "echo \"leaked $(( $(ulimit -Hn) - 1 ))\" >&2 && exec \"$@\"",
                      "bash"};
    Process run(preforkctl({"-n", "1", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}), options);
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << run.err();
    EXPECT_EQ(::access(mark.c_str(), F_OK), 0) << "spawn never called close_range, so the fallback was not tested";
    const auto leaked = lines_with(run.err(), "leaked ");
    ASSERT_EQ(leaked.size(), 1u) << run.err();
    EXPECT_EQ(reports[0].at("fds"), "0,1,2,3") << leaked[0];
    EXPECT_EQ(reports[0].at("fd3_accepting"), "1");
}
