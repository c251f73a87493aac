// What preforkctl checks before anything starts and what it hands each worker from the plan (SPEC §2-§4):
// the --cpus set, numeric --user ids, the descriptor limit, settings that cannot work.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

// A "Key:\tvalue" line of /proc/PID/status, or "".
std::string status_line(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(key + ":")) {
            const std::size_t value = line.find_first_not_of(" \t", key.size() + 1);
            return value == std::string::npos ? "" : line.substr(value);
        }
    }
    return "";
}

// The soft and hard "Max open files" of /proc/PID/limits, as written there.
std::pair<std::string, std::string> open_files_limit(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("Max open files")) {
            std::istringstream fields(line.substr(14));
            std::string soft, hard;
            fields >> soft >> hard;
            return {soft, hard};
        }
    }
    return {};
}

bool has_cpu(int cpu) {
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_ISSET(static_cast<std::size_t>(cpu), &set);
}


}  // namespace

// Issue 10 item 1: --cpus without --affinity used to leave the worker on every CPU.
TEST(PlanChecks, CpusWithoutAffinityConfinesTheWorkerToTheSet) {
    if (!has_cpu(0) || !has_cpu(1)) GTEST_SKIP() << "needs CPUs 0 and 1";
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--cpus", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    for (const Report& report : reports) {
        EXPECT_EQ(report.at("affinity"), "1");
        EXPECT_EQ(report.at("env.PREFORK_CPUS"), "1");
        EXPECT_EQ(status_line(std::stoi(report.at("pid")), "Cpus_allowed_list"), "1");
    }
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();

    Process plan(preforkctl({"-n", "2", "--cpus", "0-1", "--print-plan", "--", PROBE_WORKER_BIN}));
    ASSERT_EQ(plan.wait(), 0) << plan.err();
    EXPECT_THAT(plan.out(), HasSubstr("slot 1:       cpus 0-1\n"));
    EXPECT_THAT(plan.out(), HasSubstr("PREFORK_CPUS=0-1"));
}

// Issue 10 item 2: numeric ids without a passwd or group entry, as in distroless images and Kubernetes.
TEST(PlanChecks, NumericUserAndGroupRunTheWorkerWithThoseIdsAndNoSupplementaryGroups) {
    if (::geteuid() != 0) GTEST_SKIP() << "switching users needs root";
    TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
    for (const auto& [spec, gid] : {std::pair<std::string, std::string>{"12345:23456", "23456"}, {"12345", "0"}}) {
        SCOPED_TRACE(spec);
        Process run(preforkctl({"-n", "1", "--user", spec, "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
        std::vector<Report> reports;
        ASSERT_TRUE(wait_until([&] {
            reports = read_reports(dir.path());
            return !reports.empty();
        })) << run.err();
        const pid_t worker = std::stoi(reports[0].at("pid"));
        EXPECT_EQ(reports[0].at("uid"), "12345");
        EXPECT_EQ(reports[0].at("gid"), gid);
        EXPECT_EQ(status_line(worker, "Uid"), "12345\t12345\t12345\t12345");
        EXPECT_EQ(status_line(worker, "Gid"), gid + "\t" + gid + "\t" + gid + "\t" + gid);
        EXPECT_EQ(status_line(worker, "Groups"), "");
        run.signal(SIGTERM);
        EXPECT_EQ(run.wait(), 0) << run.err();
        for (const auto& entry : std::filesystem::directory_iterator(dir.path())) std::filesystem::remove(entry);
    }
}

TEST(PlanChecks, UserIdsThatDoNotFitAndUnknownNamesAreUsageErrors) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"99999999999999999999", "--user: uids are 0 to 4294967294, got '99999999999999999999'"},
        {"-1", "--user: uids are 0 to 4294967294, got '-1'"},
        {"12345:x-no-such-group", "--user: unknown group 'x-no-such-group'"},
        {"x-no-such-user", "--user: unknown user 'x-no-such-user'"},
    };
    for (const auto& [spec, message] : cases) {
        SCOPED_TRACE(spec);
        Process run(preforkctl({"--user", spec, "--", PROBE_WORKER_BIN}));
        expect_one_error_line(run, 2, message);
    }
}

// Issue 10 item 3: only root may switch users; a non-root preforkctl says so before starting anything.
TEST(PlanChecks, UserNeedsRootUnlessItIsPreforkctlsOwnIdentity) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to start preforkctl as another user";
    TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
    Options options{{"PROBE_DIR=" + dir.path()}};
    options.prefix = {"setpriv", "--reuid=12345", "--regid=12345", "--clear-groups", "--"};
    Process other(preforkctl({"--user", "0", "--", PROBE_WORKER_BIN}), options);
    expect_one_error_line(other, 2, "--user: switching to uid 0, gid 0 needs root (CAP_SETUID and CAP_SETGID); preforkctl runs as uid 12345");
    EXPECT_TRUE(read_reports(dir.path()).empty());

    Process same(preforkctl({"-n", "1", "--user", "12345:12345", "--", PROBE_WORKER_BIN}), options);
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << same.err();
    EXPECT_EQ(reports[0].at("uid"), "12345");
    same.signal(SIGTERM);
    EXPECT_EQ(same.wait(), 0) << same.err();
}

// Issue 10 item 3: a --chdir that cannot work used to send every worker through backoff until exit 5.
TEST(PlanChecks, AChdirThatIsNoDirectoryStopsPreforkctlBeforeAnyWorkerStarts) {
    TempDir dir;
    const std::string file = dir.path() + "/file";
    std::ofstream(file) << "x";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {dir.path() + "/typo", "--chdir: cannot use '" + dir.path() + "/typo' as the workers' directory: No such file or directory"},
        {file, "--chdir: cannot use '" + file + "' as the workers' directory: Not a directory"},
    };
    for (const auto& [path, message] : cases) {
        SCOPED_TRACE(path);
        Process run(preforkctl({"-n", "1", "--chdir", path, "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
        expect_one_error_line(run, 2, message);
        EXPECT_TRUE(read_reports(dir.path()).empty());
    }
    Options options{{"PROBE_DIR=" + dir.path()}};
    options.prefix = {"env", "-C", dir.path()};
    Process relative(preforkctl({"-n", "1", "--chdir", "file", "--", PROBE_WORKER_BIN}), options);
    expect_one_error_line(relative, 2, "--chdir: cannot use 'file' as the workers' directory: Not a directory");
}

// Issue 10 item 5: under the common soft limit of 1024, -n 300 used to fail with "Too many open files".
TEST(PlanChecks, ThreeHundredWorkersFitUnderASoftLimitOf1024AndKeepItThemselves) {
    TempDir dir;
    Options options;
    options.prefix = {"prlimit", "--nofile=1024:8192", "--"};
    Process run(preforkctl({"-n", "300", "--", "sleep", "600"}), options);
    std::vector<pid_t> workers;
    ASSERT_TRUE(wait_until(
        [&] {
            workers = children_of(run.pid());
            return workers.size() >= 300 || run.exited();
        },
        60s))
        << run.err();
    ASSERT_EQ(workers.size(), 300u) << run.err();
    EXPECT_EQ(open_files_limit(run.pid()), (std::pair<std::string, std::string>{"8192", "8192"}));
    for (const pid_t worker : {workers.front(), workers[150], workers.back()}) {
        ASSERT_TRUE(wait_until([&] { return command_of(worker) == "sleep"; })) << worker;
        EXPECT_EQ(open_files_limit(worker), (std::pair<std::string, std::string>{"1024", "8192"})) << worker;
    }
    EXPECT_EQ(lines_with(run.err(), "Too many open files").size(), 0u) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(60s), 0) << run.err();
}

TEST(PlanChecks, AHardDescriptorLimitTooLowForTheWorkersIsAUsageErrorWithTheNumberNeeded) {
    Options options;
    options.prefix = {"prlimit", "--nofile=1024:1024", "--"};
    Process run(preforkctl({"-n", "300", "--", "sleep", "600"}), options);
    expect_one_error_line(run, 2, "--workers: 300 workers need about ");
    EXPECT_THAT(run.err(), HasSubstr("file descriptors, but preforkctl may open only 1024"));
    const std::regex needed(R"(need about (\d+) file descriptors)");
    std::smatch match;
    const std::string err = run.err();
    ASSERT_TRUE(std::regex_search(err, match, needed)) << err;
    EXPECT_GT(std::stoi(match[1].str()), 1024);
}

// Issue 10 item 6.
TEST(PlanChecks, ReadyTimeoutWithoutNotifyIsAWarningAndTheWorkersStart) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--ready-timeout", "5s", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    const auto warnings = lines_with(run.err(), "preforkctl: warning: ");
    ASSERT_EQ(warnings.size(), 1u) << run.err();
    EXPECT_THAT(warnings[0], HasSubstr("--ready-timeout: has no effect without --ready notify"));
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// SPEC §9: every long option is a key of the config file (but --config itself, --help and --version).
TEST(PlanChecks, EveryLongOptionOfHelpIsAConfigFileKey) {
    Process help(preforkctl({"--help"}));
    ASSERT_EQ(help.wait(), 0);
    const std::string text = help.out();
    const std::regex option_line(R"((?:^|\n)\s+(?:-[a-zA-Z],)?(--[a-z][a-z-]+))");
    std::set<std::string> keys;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), option_line); it != std::sregex_iterator(); ++it) {
        keys.insert((*it)[1].str().substr(2));
    }
    for (const char* action : {"help", "version", "config"}) keys.erase(action);
    EXPECT_GT(keys.size(), 25u) << text;
    EXPECT_TRUE(keys.count("verbose") && keys.count("quiet")) << text;
    TempDir dir;
    for (const std::string& key : keys) {
        SCOPED_TRACE(key);
        const std::string path = dir.path() + "/" + key + ".toml";
        std::ofstream(path) << key << " = 1.5\n";  // a float: no key takes one, so every known key says "must be"
        Process run(preforkctl({"-c", path, "--", PROBE_WORKER_BIN}));
        expect_one_error_line(run, 3, path + ":1:");
        EXPECT_THAT(run.err(), HasSubstr("'" + key + "' must be")) << "unknown key?";
    }
}
