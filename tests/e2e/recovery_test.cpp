// Recovering from failures while the service runs (SPEC §6, §7): a command that disappears at a restart, a
// crash while a replaced worker still drains, a parked slot brought back by a rolling restart, and the exit
// status of a stop that comes while a slot is parked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::vector<Report> reports_of_slot(const std::string& dir, const std::string& slot) {
    std::vector<Report> found;
    for (Report& report : read_reports(dir)) {
        if (report["env.PREFORK_SLOT"] == slot) found.push_back(std::move(report));
    }
    return found;
}

// A worker command whose slot 1 exits 1 at once until `fixed` exists; every other start is a probe_worker.
std::vector<std::string> slot_one_broken_until(const std::string& fixed) {
    return {"/bin/sh", "-c",
            "if [ \"$PREFORK_SLOT\" = 1 ] && [ ! -e '" + fixed + "' ]; then exit 1; fi; exec " PROBE_WORKER_BIN};
}

std::vector<std::string> with_command(std::vector<std::string> options, const std::vector<std::string>& command) {
    options.emplace_back("--");
    options.insert(options.end(), command.begin(), command.end());
    return preforkctl(std::move(options));
}

}  // namespace

// A deploy replaced the binary with rm + cp just as a worker crashed: the restart cannot execute the command.
// That is a failed start under the restart policy, not a configuration error: the healthy worker keeps
// serving, the slot backs off, and it comes back once the binary is there again.
TEST(Recovery, ACommandThatCannotBeExecutedAtARestartIsAFailedStartAndTheOthersKeepServing) {
    TempDir dir;
    const std::string server = dir.path() + "/server";
    std::filesystem::copy_file(PROBE_WORKER_BIN, server);
    Process run(preforkctl({"-n", "2", "--backoff", "50ms..50ms", "--max-restarts", "1000", "--", server}),
                {{"PROBE_DIR=" + dir.path()}});
    ASSERT_TRUE(wait_until([&] { return read_reports(dir.path()).size() == 2; })) << run.err();
    const pid_t healthy = std::stoi(reports_of_slot(dir.path(), "0").at(0).at("pid"));
    const pid_t victim = std::stoi(reports_of_slot(dir.path(), "1").at(0).at("pid"));

    std::filesystem::remove(server);
    ::kill(victim, SIGKILL);
    ASSERT_TRUE(wait_until([&] {
        return lines_with(run.err(), "slot 1: cannot execute " + server + ": No such file or directory; restarting in")
                   .size() >= 2;
    })) << run.err();
    EXPECT_TRUE(is_alive(run.pid())) << run.err();
    EXPECT_TRUE(is_alive(healthy)) << "the healthy worker must keep serving: " << run.err();
    EXPECT_THAT(run.err(), Not(HasSubstr("slot 1: slot 1:"))) << "the slot is named once";
    EXPECT_THAT(run.err(), Not(HasSubstr("stopping every worker")));

    std::filesystem::copy_file(PROBE_WORKER_BIN, server);
    ASSERT_TRUE(wait_until([&] { return reports_of_slot(dir.path(), "1").size() == 2; })) << run.err();
    EXPECT_TRUE(is_alive(healthy));
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// HUP -> the new worker is ready -> the old one drains (it lingers after TERM) -> the new one crashes -> TERM.
// The draining worker is still preforkctl's to wait for: it finishes its linger before preforkctl exits
// (before, preforkctl left at once and PDEATHSIG killed it mid-drain).
TEST(Recovery, AStopWaitsForAWorkerStillDrainingAfterItsSuccessorCrashed) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--backoff", "30s..30s", "--stop-timeout", "30s", "--", PROBE_WORKER_BIN,
                            "--on-term", "3000"}),
                {{"PROBE_DIR=" + dir.path()}});
    ASSERT_TRUE(wait_until([&] { return read_reports(dir.path()).size() == 1; })) << run.err();
    const std::string old_pid = read_reports(dir.path())[0].at("pid");
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.out(), "bye pid=" + old_pid).empty(); })) << run.out();
    // Ready at exec (--ready none): the new worker may write its report only after the old one said bye.
    ASSERT_TRUE(wait_until([&] { return read_reports(dir.path()).size() == 2; })) << run.err();
    std::string new_pid;
    for (const Report& report : read_reports(dir.path())) {
        if (report.at("pid") != old_pid) new_pid = report.at("pid");
    }
    ASSERT_FALSE(new_pid.empty());
    ::kill(std::stoi(new_pid), SIGKILL);
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "was killed by SIGKILL; restarting in 30s").empty(); }))
        << run.err();
    ASSERT_TRUE(is_alive(std::stoi(old_pid))) << "the old worker is still draining";
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(lines_with(run.out(), "linger over pid=" + old_pid).size(), 1u)
        << "the draining worker was killed before it finished: " << run.out();
    EXPECT_FALSE(is_alive(std::stoi(old_pid)));
}

// The fix-and-reload path after a crash loop: the slot is parked, the user fixes what was wrong and sends HUP;
// the rolling restart starts the parked slot again with a fresh threshold history.
TEST(Recovery, ARollingRestartStartsAParkedSlotAgain) {
    TempDir dir;
    const std::string fixed = dir.path() + "/fixed";
    Process run(with_command({"-n", "2", "--on-threshold", "park", "--max-restarts", "1", "--backoff", "10ms..10ms"},
                             slot_one_broken_until(fixed)),
                {{"PROBE_DIR=" + dir.path()}});
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "slot 1:").empty() &&
                                        !lines_with(run.err(), "slot parked").empty(); }))
        << run.err();
    ASSERT_EQ(reports_of_slot(dir.path(), "1").size(), 0u);
    std::ofstream(fixed).put('1');
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return reports_of_slot(dir.path(), "1").size() == 1; })) << run.err();
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "rolling restart done").empty(); })) << run.err();
    const pid_t revived = std::stoi(reports_of_slot(dir.path(), "1")[0].at("pid"));
    EXPECT_TRUE(is_alive(revived));
    // Ready at exec (--ready none): slot 0's new worker may write its report after the restart is done.
    EXPECT_TRUE(wait_until([&] { return reports_of_slot(dir.path(), "0").size() == 2; }))
        << "slot 0 was replaced too: " << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << "no slot is parked any more: " << run.err();
}

// A stop is clean (0) only when the service was whole: with a slot parked at that moment it exits 5, as it
// would have without the stop (never 0 after a failure).
TEST(Recovery, AStopWhileASlotIsParkedExitsFive) {
    TempDir dir;
    const std::string never = dir.path() + "/never";
    Process run(with_command({"-n", "2", "--on-threshold", "park", "--max-restarts", "1", "--backoff", "10ms..10ms"},
                             slot_one_broken_until(never)),
                {{"PROBE_DIR=" + dir.path()}});
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "slot parked").empty(); })) << run.err();
    ASSERT_TRUE(wait_until([&] { return reports_of_slot(dir.path(), "0").size() == 1; })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 5) << run.err();
}

// A worker's own set-up that fails the same way on every try (here: --user cannot enter --chdir) is found at
// the first start and ends preforkctl with one message and status 126, instead of a restart loop up to the
// threshold (exit 5).
TEST(Recovery, AWorkerSetUpThatCanNeverSucceedEndsPreforkctlAtStartUpWith126) {
    if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
    TempDir dir;
    const std::string closed = dir.path() + "/closed";
    std::filesystem::create_directory(closed);
    std::filesystem::permissions(closed, std::filesystem::perms::owner_all);
    std::filesystem::permissions(dir.path(), std::filesystem::perms::all);  // nobody may reach `closed` itself
    Process run(preforkctl({"-n", "2", "--user", "nobody", "--chdir", closed, "--backoff", "10ms..10ms", "--",
                            PROBE_WORKER_BIN}),
                {{"PROBE_DIR=" + dir.path()}});
    EXPECT_EQ(run.wait(), 126) << run.err();
    EXPECT_EQ(lines_with(run.err(), "chdir: Permission denied").size(), 1u) << run.err();
    EXPECT_THAT(run.err(), Not(HasSubstr("restarting in")));
    EXPECT_TRUE(read_reports(dir.path()).empty());
}

// A shell's background job may still hold the shell's stdout (preforkctl's output pipe) for a moment after
// the shell exec'd preforkctl, before its own redirections. Whether an inherited child reads preforkctl's
// output is decided when strays are looked for, not at start: this job is stopped like any stray.
TEST(Recovery, ABackgroundJobThatLetGoOfTheOutputPipeLateIsStoppedLikeAnyStray) {
    std::vector<std::string> args = {
        "bash", "-c", "(sleep 0.5; exec sleep 1000 </dev/null >/dev/null 2>&1) & exec \"$@\"", "bash"};
    for (const std::string& arg : preforkctl({"-n", "1", "--", PROBE_WORKER_BIN})) args.push_back(arg);
    Process run(args);
    pid_t background = 0;
    ASSERT_TRUE(wait_until([&] {
        for (const pid_t child : children_of(run.pid())) {
            if (command_of(child) == "sleep" && command_of(run.pid()) == "preforkctl") background = child;
        }
        return background > 0 && !lines_with(run.err(), "starting 1 worker").empty();
    })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_FALSE(is_alive(background)) << "the background job outlived preforkctl";
    ::kill(background, SIGKILL);
}
