// --env-file (SPEC §15): KEY=VALUE files as Docker and systemd read them reach every worker, a later file
// wins over an earlier one and --env over every file, a file that cannot be read is one error line and
// nothing starts, and a reload reads the files again.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace {

void write(const std::string& path, const std::string& content) {
    std::ofstream(path, std::ios::trunc) << content;
}


// True when `run` has exactly `count` live workers and every one was started with NAME=`value`.
bool workers_have(const Process& run, std::size_t count, const std::string& name, const std::string& value) {
    const std::vector<pid_t> workers = live_children(run.pid());
    return workers.size() == count &&
           std::all_of(workers.begin(), workers.end(), [&](pid_t pid) { return environment_of(pid, name) == value; });
}

}  // namespace

TEST(EnvFile, WorkersSeeTheVariablesALaterFileWinsAndEnvWinsOverEveryFile) {
    TempDir dir;
    write(dir.path() + "/base.env",
          "# shared settings\nONLY_BASE=base\nSHARED=base\nOVERRIDDEN=base\nQUOTED=\"say \\\"hi\\\"\"\n");
    write(dir.path() + "/local.env", "SHARED=local\r\nexport OVERRIDDEN = local\r\nSPACED='  kept  '\r\n");
    Process run(preforkctl({"-n", "2", "--env-file", dir.path() + "/base.env", "--env-file", dir.path() + "/local.env",
                            "-e", "OVERRIDDEN=flag", "--", "sleep", "1000"}));
    ASSERT_TRUE(wait_until([&] { return workers_have(run, 2, "OVERRIDDEN", "flag"); })) << run.err();
    for (const pid_t worker : live_children(run.pid())) {
        EXPECT_EQ(environment_of(worker, "ONLY_BASE"), "base");
        EXPECT_EQ(environment_of(worker, "SHARED"), "local");
        EXPECT_EQ(environment_of(worker, "QUOTED"), "say \"hi\"");
        EXPECT_EQ(environment_of(worker, "SPACED"), "  kept  ");
        EXPECT_TRUE(environment_of(worker, "PREFORK_SLOT").has_value()) << "preforkctl's own variables stay";
    }
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// The config file's env-file, like its chdir and command, is relative to where preforkctl started; its env
// wins over every file, the command line's files included.
TEST(EnvFile, TheConfigFilesEnvFileIsRelativeToTheStartDirectoryAndPrintPlanShowsItsVariables) {
    TempDir dir;
    ASSERT_EQ(::mkdir((dir.path() + "/conf").c_str(), 0755), 0);
    write(dir.path() + "/conf/preforkctl.toml",
          "env-file = [\"app.env\"]\ncommand = [\"sleep\", \"1000\"]\n[env]\nFROM_TOML = \"toml\"\n");
    write(dir.path() + "/app.env", "APP=started-here\nFROM_TOML=file\nLATER=app\n");
    write(dir.path() + "/conf/app.env", "APP=beside-the-config-file\n");
    write(dir.path() + "/later.env", "LATER=later\nFROM_TOML=later\n");
    Options options;
    options.prefix = {"env", "-C", dir.path()};
    Process plan(preforkctl({"-c", "conf/preforkctl.toml", "--env-file", "later.env", "-n", "1", "--print-plan"}),
                 options);
    ASSERT_EQ(plan.wait(), 0) << plan.err();
    EXPECT_THAT(plan.out(), HasSubstr("env files:    app.env, later.env (a later file wins, --env over them all)\n"));
    const std::vector<std::string> env_lines = lines_with(plan.out(), "  env:        ");
    ASSERT_EQ(env_lines.size(), 1u) << plan.out();
    EXPECT_THAT(env_lines[0], HasSubstr("APP=started-here"));
    EXPECT_THAT(env_lines[0], HasSubstr("LATER=later"));
    EXPECT_THAT(env_lines[0], HasSubstr("FROM_TOML=toml"));
    EXPECT_THAT(env_lines[0], Not(HasSubstr("FROM_TOML=later")));

    Process run(preforkctl({"-c", "conf/preforkctl.toml", "-n", "1"}), options);
    ASSERT_TRUE(wait_until([&] { return workers_have(run, 1, "APP", "started-here"); })) << run.err();
    EXPECT_EQ(environment_of(live_children(run.pid()).front(), "FROM_TOML"), "toml");
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(EnvFile, ABadLineIsOneErrorLineNamingFileAndLineWithStatus3AndNothingStarts) {
    TempDir dir;
    write(dir.path() + "/app.env", "# comment\nGOOD=1\nSECRET hunter2\n");
    Process run(preforkctl({"-n", "1", "--env-file", dir.path() + "/app.env", "--", PROBE_WORKER_BIN}),
                {{"PROBE_DIR=" + dir.path()}});
    expect_one_error_line(run, 3, "preforkctl: error: " + dir.path() + "/app.env:3: expected KEY=VALUE, found no '='");
    EXPECT_THAT(run.err(), Not(HasSubstr("hunter2")));
    EXPECT_TRUE(read_reports(dir.path()).empty()) << "a worker started";

    write(dir.path() + "/app.env", "GOOD=1\n\nMY-KEY=x\n");
    Options in_dir({"PROBE_DIR=" + dir.path()});
    in_dir.prefix = {"env", "-C", dir.path()};
    Process named(preforkctl({"-n", "1", "--env-file", "app.env", "--", PROBE_WORKER_BIN}), in_dir);
    expect_one_error_line(named, 3, "preforkctl: error: app.env:3: invalid variable name 'MY-KEY'");
    EXPECT_TRUE(read_reports(dir.path()).empty()) << "a worker started";
}

TEST(EnvFile, AFileThatCannotBeReadIsOneErrorLineNamingTheOptionOrTheConfigKey) {
    TempDir dir;
    Process missing(preforkctl({"--env-file", dir.path() + "/missing.env", "--", PROBE_WORKER_BIN}),
                    {{"PROBE_DIR=" + dir.path()}});
    expect_one_error_line(
        missing, 2,
        "preforkctl: error: --env-file: cannot read '" + dir.path() + "/missing.env': No such file or directory");
    Process directory(preforkctl({"--env-file", dir.path(), "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    expect_one_error_line(directory, 2, "--env-file: cannot read '" + dir.path() + "': Is a directory");

    const std::string config = dir.path() + "/preforkctl.toml";
    write(config, "workers = 1\nenv-file = \"" + dir.path() + "/missing.env\"\n");
    Process from_file(preforkctl({"-c", config, "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    expect_one_error_line(from_file, 3, "preforkctl: error: " + config + ":2:12: env-file: cannot read '");
    EXPECT_TRUE(read_reports(dir.path()).empty()) << "a worker started";
}

// Without -c too: the env files alone are worth a re-read. A file that became invalid is refused with its
// file:line and the workers keep running.
TEST(EnvFile, AReloadReadsTheFilesAgainAndABadFileChangesNothing) {
    TempDir dir;
    const std::string path = dir.path() + "/app.env";
    write(path, "GREETING=one\n");
    Process run(preforkctl({"--name", "envfile-reload", "-n", "2", "--env-file", path, "--", "sleep", "1000"}));
    ASSERT_TRUE(wait_until([&] { return workers_have(run, 2, "GREETING", "one"); })) << run.err();

    write(path, "GREETING=two\nADDED=yes\n");
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return workers_have(run, 2, "GREETING", "two"); })) << run.err();
    EXPECT_TRUE(workers_have(run, 2, "ADDED", "yes"));
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.err(), "settings re-read; new --env/--env-file").empty(); }))
        << run.err();

    const std::vector<pid_t> before = live_children(run.pid());
    write(path, "GREETING=three\nBAD KEY=x\n");
    const CtlResult reload = ctl({"--name", "envfile-reload", "reload"});
    EXPECT_EQ(reload.status, 1) << reload.out << reload.err;
    EXPECT_THAT(reload.out + reload.err, HasSubstr("nothing changed: " + path + ":2: invalid variable name 'BAD KEY'"));
    const std::vector<pid_t> after = live_children(run.pid());
    EXPECT_EQ(std::set<pid_t>(before.begin(), before.end()), std::set<pid_t>(after.begin(), after.end()))
        << "a refused reload restarted workers";
    EXPECT_TRUE(workers_have(run, 2, "GREETING", "two"));
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}
