#include "sys/proc_usage.hpp"

#include <gtest/gtest.h>

#include "fake_root.hpp"
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace preforkctl::sys;
namespace fs = std::filesystem;

namespace {

// A stat line as the kernel writes it, with the fields the tree sums read set and the rest plausible.
std::string stat_line(int pid, const std::string& comm, char state, int ppid, int utime, int stime, long rss,
                      int cutime = 0, int cstime = 0) {
    return std::to_string(pid) + " (" + comm + ") " + state + " " + std::to_string(ppid) +
           " 100 100 0 -1 4194560 120 0 0 0 " + std::to_string(utime) + " " + std::to_string(stime) + " " +
           std::to_string(cutime) + " " + std::to_string(cstime) + " 20 0 1 0 5000 10485760 " + std::to_string(rss) +
           " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
}

ProcStat process(int pid, int ppid, std::uint64_t ticks, std::uint64_t rss_pages, char state = 'S') {
    ProcStat stat;
    stat.pid = pid;
    stat.state = state;
    stat.ppid = ppid;
    stat.utime_ticks = ticks;
    stat.rss_pages = rss_pages;
    return stat;
}

}  // namespace

TEST(ProcStat, ReadsPidStateParentTimesAndRss) {
    const auto stat = parse_proc_stat(stat_line(4242, "nginx", 'S', 4200, 150, 30, 2048));
    ASSERT_TRUE(stat);
    EXPECT_EQ(stat->pid, 4242);
    EXPECT_EQ(stat->state, 'S');
    EXPECT_EQ(stat->ppid, 4200);
    EXPECT_EQ(stat->utime_ticks, 150u);
    EXPECT_EQ(stat->stime_ticks, 30u);
    EXPECT_EQ(stat->rss_pages, 2048u);
}

TEST(ProcStat, SplitsAtTheLastParenthesisSoACommandNameWithSpacesAndParenthesesIsSkipped) {
    const auto stat = parse_proc_stat(stat_line(7, "a) R 1 (b c) ", 'R', 3, 11, 12, 13));
    ASSERT_TRUE(stat);
    EXPECT_EQ(stat->pid, 7);
    EXPECT_EQ(stat->state, 'R');
    EXPECT_EQ(stat->ppid, 3);
    EXPECT_EQ(stat->utime_ticks, 11u);
    EXPECT_EQ(stat->stime_ticks, 12u);
    EXPECT_EQ(stat->rss_pages, 13u);
}

TEST(ProcStat, ReadsTheCpuOfReapedChildrenSoATreeNeverLosesTheTimeOfAnExitedHelper) {
    const auto stat = parse_proc_stat(stat_line(7, "sh", 'S', 1, 5, 5, 100, 30, 12));
    ASSERT_TRUE(stat);
    EXPECT_EQ(stat->reaped_children_ticks, 42u);
    EXPECT_DOUBLE_EQ(sum_tree_usage({*stat}, {7}, 4096, 100).at(7).cpu_seconds, 0.52);
}

TEST(ProcStat, ReadsTheNumberOfThreads) {
    std::string line = stat_line(7, "java", 'S', 1, 0, 0, 1);
    line.replace(line.find(" 20 0 1 0 "), 10, " 20 0 9 0 ");
    EXPECT_EQ(parse_proc_stat(line)->threads, 9);
    EXPECT_EQ(parse_proc_stat(stat_line(7, "sh", 'S', 1, 0, 0, 1))->threads, 1);
}

TEST(ProcStat, ReadsANegativeRssAsZero) {
    const auto stat = parse_proc_stat(stat_line(7, "x", 'S', 1, 0, 0, -3));
    ASSERT_TRUE(stat);
    EXPECT_EQ(stat->rss_pages, 0u);
}

TEST(ProcStat, RejectsTextThatIsNotAStatLine) {
    EXPECT_FALSE(parse_proc_stat(""));
    EXPECT_FALSE(parse_proc_stat("garbage"));
    EXPECT_FALSE(parse_proc_stat("12 (short) S 1 2 3"));  // cut before rss
    EXPECT_FALSE(parse_proc_stat("x (comm) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21"));
    EXPECT_FALSE(parse_proc_stat("12 comm) S"));  // no '('
    std::string bad_utime = stat_line(12, "comm", 'S', 1, 5, 5, 5);
    bad_utime.replace(bad_utime.find(" 5 5 "), 5, " 5x 5 ");
    EXPECT_FALSE(parse_proc_stat(bad_utime));
}

TEST(TreeUsage, SumsARootAndAllItsDescendantsButNotItsParentOrSiblings) {
    const std::vector<ProcStat> processes{
        process(1, 0, 1000, 1000),  // init
        process(10, 1, 100, 10),    // root
        process(11, 10, 50, 20),    // child
        process(12, 11, 25, 40),    // grandchild
        process(13, 1, 7, 7),       // sibling of the root
    };
    const auto usage = sum_tree_usage(processes, {10}, 4096, 100);
    ASSERT_EQ(usage.size(), 1u);
    const TreeUsage& tree = usage.at(10);
    EXPECT_EQ(tree.processes, 3);
    EXPECT_EQ(tree.rss_bytes, 70u * 4096u);
    EXPECT_DOUBLE_EQ(tree.cpu_seconds, 1.75);
}

TEST(TreeUsage, CountsUserAndSystemTime) {
    const std::vector<ProcStat> processes{ProcStat{5, 'R', 1, 30, 20, 0, 1}};
    EXPECT_DOUBLE_EQ(sum_tree_usage(processes, {5}, 4096, 100).at(5).cpu_seconds, 0.5);
}

TEST(TreeUsage, LeavesOutZombiesAndAbsentRoots) {
    const std::vector<ProcStat> processes{
        process(10, 1, 100, 10),
        process(11, 10, 50, 20, 'Z'),
        process(20, 1, 100, 10, 'Z'),
    };
    const auto usage = sum_tree_usage(processes, {10, 20, 30}, 4096, 100);
    ASSERT_EQ(usage.size(), 1u);
    EXPECT_EQ(usage.at(10).processes, 1);
    EXPECT_EQ(usage.at(10).rss_bytes, 10u * 4096u);
}

TEST(TreeUsage, GivesEachRootItsOwnTreeEvenWhenOneHoldsAnother) {
    const std::vector<ProcStat> processes{process(10, 1, 1, 1), process(11, 10, 1, 1), process(12, 11, 1, 1)};
    const auto usage = sum_tree_usage(processes, {10, 11}, 1, 1);
    EXPECT_EQ(usage.at(10).processes, 3);
    EXPECT_EQ(usage.at(11).processes, 2);
}

TEST(TreeUsage, EndsOnAParentCycle) {
    const std::vector<ProcStat> processes{process(10, 11, 1, 1), process(11, 10, 1, 1)};
    EXPECT_EQ(sum_tree_usage(processes, {10}, 1, 1).at(10).processes, 2);
}

namespace {

// A fake /proc in a temp directory.
using FakeProc = FakeRoot;

}  // namespace

TEST_F(FakeProc, ReadsEveryProcessOnceAndSumsEachRootsTree) {
    write("1/stat", stat_line(1, "init", 'S', 0, 500, 500, 100));
    write("300/stat", stat_line(300, "web worker", 'S', 1, 100, 50, 10));
    write("301/stat", stat_line(301, "php (fpm)", 'R', 300, 20, 30, 20));
    write("302/stat", stat_line(302, "sh", 'Z', 300, 1000, 1000, 0));
    write("400/stat", stat_line(400, "other", 'S', 1, 10, 10, 5));
    write("401/stat", "not a stat line\n");
    write("500/status", "a process that vanished: no stat\n");
    write("self/stat", stat_line(1, "init", 'S', 0, 500, 500, 100));  // not a pid: skipped
    write("cpuinfo", "processor : 0\n");

    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const auto usage = read_tree_usage({300, 400, 500, 999}, root_.string());
    ASSERT_EQ(usage.size(), 2u);
    EXPECT_EQ(usage.at(300).processes, 2);
    EXPECT_EQ(usage.at(300).rss_bytes, 30 * page);
    EXPECT_DOUBLE_EQ(usage.at(300).cpu_seconds, 200 / ticks);
    EXPECT_EQ(usage.at(400).processes, 1);
    EXPECT_EQ(usage.at(400).rss_bytes, 5 * page);
}

TEST_F(FakeProc, FollowsTheChildrenFilesOfEveryThreadAndReadsNoOtherProcess) {
    std::string two_threads = stat_line(300, "web worker", 'S', 1, 100, 50, 10);
    two_threads.replace(two_threads.find(" 20 0 1 0 "), 10, " 20 0 2 0 ");  // num_threads 2
    write("300/stat", two_threads);
    write("300/task/300/children", "301 ");
    write("300/task/310/children", "302 ");  // a child forked by another thread of the worker
    write("301/stat", stat_line(301, "php", 'R', 300, 20, 30, 20));
    write("301/task/301/children", "");
    write("302/stat", stat_line(302, "helper", 'S', 300, 5, 5, 1));  // its ppid is the process, not the thread
    write("302/task/302/children", "");
    // Claims to be a child of the root, but no children file names it: the walk never reads it (a full scan
    // over every process would count it).
    write("400/stat", stat_line(400, "other", 'S', 300, 10, 10, 5));
    const auto usage = read_tree_usage({300}, root_.string());
    ASSERT_EQ(usage.count(300), 1u);
    EXPECT_EQ(usage.at(300).processes, 3);
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    EXPECT_EQ(usage.at(300).rss_bytes, 31 * page);
}

TEST_F(FakeProc, AMissingProcDirectoryGivesNothing) {
    EXPECT_TRUE(read_tree_usage({1}, (root_ / "absent").string()).empty());
}

namespace {

// Burns CPU until this process has used `seconds` of it (async-signal-safe calls only: runs after fork).
void burn_cpu(double seconds) {
    timespec used{};
    do {
        ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
    } while (static_cast<double>(used.tv_sec) + static_cast<double>(used.tv_nsec) / 1e9 < seconds);
}

}  // namespace

TEST(TreeUsageOfRealProcesses, CountsAForkedChildAndGrandchildWithTheirMemoryAndCpu) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::setpgid(0, 0);
        if (::fork() == 0) {
            burn_cpu(0.2);
            const char byte = 'g';
            (void)!::write(ready[1], &byte, 1);
            for (;;) ::pause();
        }
        const char byte = 'c';
        (void)!::write(ready[1], &byte, 1);
        for (;;) ::pause();
    }
    // Both sides set the group, so that the kill below reaches the grandchild whichever runs first.
    ::setpgid(child, child);
    struct KillTheTree {
        pid_t leader;
        ~KillTheTree() {
            ::kill(-leader, SIGKILL);
            ::kill(leader, SIGKILL);
            ::waitpid(leader, nullptr, 0);
        }
    } const kill_the_tree{child};

    ::close(ready[1]);
    char bytes[2];
    std::size_t got = 0;
    while (got < 2) {
        const ssize_t n = ::read(ready[0], bytes + got, 2 - got);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(ready[0]);
    ASSERT_EQ(got, 2u);

    const auto usage = read_tree_usage({child, 0x3fffffff});
    ASSERT_EQ(usage.size(), 1u);  // the pid no kernel hands out is absent
    const TreeUsage& tree = usage.at(child);
    EXPECT_EQ(tree.processes, 2);
    EXPECT_GT(tree.rss_bytes, 100u * 1024u);
    EXPECT_GE(tree.cpu_seconds, 0.1);
    EXPECT_LT(tree.cpu_seconds, 10.0);
}
