#include "plan/control_path.hpp"
#include "plan/make_plan.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <algorithm>
#include <csignal>

using namespace preforkctl;
using namespace preforkctl::plan;
using ::testing::HasSubstr;

namespace {

// A fake 8-CPU host with two SMT siblings per core (cpu i and i+4 share a core).
HostFacts eight_cpu_host() {
    HostFacts facts;
    facts.cpus.affinity = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int cpu = 0; cpu < 8; ++cpu) facts.cpus.topology.push_back({cpu, 0, cpu % 4});
    facts.command = {"/usr/bin/server", 0};
    facts.environment = {"PATH=/usr/bin", "LISTEN_PID=1", "LISTEN_FDS=2", "LISTEN_PIDFDID=9", "HOME=/root"};
    return facts;
}

config::Settings settings_with(std::vector<std::pair<std::string, std::string>> flags) {
    config::Settings s;
    s.command = config::Setting<std::vector<std::string>>{{"server", "--port", "{port}"}, "command line"};
    for (auto& [key, value] : flags) {
        config::Setting<std::string> setting{value, "--" + key};
        if (key == "workers") s.workers = setting;
        else if (key == "cpus") s.cpus = setting;
        else if (key == "listen") s.listen.push_back(setting);
        else if (key == "env") s.env.push_back(setting);
        else if (key == "env-file") s.env_file.push_back(setting);
        else if (key == "backoff") s.backoff = setting;
        else if (key == "name") s.name = setting;
        else if (key == "log-overflow") s.log_overflow = setting;
        else if (key == "success-exit") s.success_exit = setting;
        else if (key == "restart-prevent") s.restart_prevent = setting;
        else if (key == "restart-force") s.restart_force = setting;
        else if (key == "signal-scope") s.signal_scope = setting;
        else if (key == "rewrite-signal") s.rewrite_signal.push_back(setting);
        else if (key == "stop-signal") s.stop_signal = setting;
        else if (key == "restart-window") s.restart_window = setting;
        else if (key == "fd-env") s.fd_env = setting;
        else if (key == "socket-mode") s.socket_mode = setting;
        else if (key == "steer") s.steer = setting;
        else if (key == "ready") s.ready = setting;
        else if (key == "ready-timeout") s.ready_timeout = setting;
        else if (key == "chdir") s.chdir = setting;
        else if (key == "user") s.user = setting;
        else if (key == "log-format") s.log_format = setting;
        else if (key == "control") s.control = setting;
        else if (key == "metrics") s.metrics = setting;
        else if (key == "scale-up-after") s.scale_up_after = setting;
        else if (key == "scale-down-after") s.scale_down_after = setting;
        else if (key == "max-rss") s.max_rss = setting;
        else if (key == "max-lifetime") s.max_lifetime = setting;
        else if (key == "lifetime-jitter") s.lifetime_jitter = setting;
        else if (key == "watchdog") s.watchdog = setting;
        else ADD_FAILURE() << key;
    }
    return s;
}

}  // namespace

TEST(MakePlan, AutoWorkersOnAnEightCpuHostGivesEightSlotsSpreadOverPhysicalCoresFirst) {
    auto s = settings_with({});
    s.affinity = config::Setting<bool>{true, "--affinity"};
    auto plan = make_plan(s, eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->workers, 8);
    std::vector<int> cpus;
    for (const auto& slot : plan->slots) { ASSERT_EQ(slot.cpus.size(), 1u); cpus.push_back(slot.cpus.front()); }
    EXPECT_EQ(cpus, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    EXPECT_THAT(plan->workers_source, HasSubstr("auto"));
}

TEST(MakePlan, CpusRestrictionPinsSlotsInsideItAndWrapsWhenWorkersExceedIt) {
    auto s = settings_with({{"cpus", "4-5"}, {"workers", "3"}});
    s.affinity = config::Setting<bool>{true, "--affinity"};
    auto plan = make_plan(s, eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    std::vector<int> cpus;
    for (const auto& slot : plan->slots) { ASSERT_EQ(slot.cpus.size(), 1u); cpus.push_back(slot.cpus.front()); }
    EXPECT_EQ(cpus, (std::vector<int>{4, 5, 4}));
}

TEST(MakePlan, CpusOutsideTheAllowedSetIsAnErrorNamingTheOption) {
    HostFacts facts = eight_cpu_host();
    facts.cpus.affinity = {0, 1};
    auto plan = make_plan(settings_with({{"cpus", "0-3"}}), facts);
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--cpus: CPU 2 is not available to this process"));
    EXPECT_EQ(plan.error().exit, ExitCode::usage);
}

TEST(MakePlan, ErrorsFromTheConfigFileCarryFileLineColumnAndTheConfigExitCode) {
    auto s = settings_with({});
    s.workers = config::Setting<std::string>{"lots", "prefork.toml:3:11"};
    auto plan = make_plan(s, eight_cpu_host());
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().message, "prefork.toml:3:11: workers: must be 'auto' or a number from 1 to 4096, got 'lots'");
    EXPECT_EQ(plan.error().exit, ExitCode::config);
}

TEST(MakePlan, MissingAndNonExecutableCommandsMapTo127And126) {
    HostFacts facts = eight_cpu_host();
    facts.command = {"", ENOENT};
    auto missing = make_plan(settings_with({}), facts);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "cannot execute server: No such file or directory");
    EXPECT_EQ(missing.error().exit, ExitCode::not_found);
    facts.command = {"", EACCES};
    EXPECT_EQ(make_plan(settings_with({}), facts).error().exit, ExitCode::not_executable);
}

TEST(MakePlan, WorkerEnvironmentDropsInheritedListenVariablesAndAppliesEnvOverrides) {
    auto plan = make_plan(settings_with({{"env", "HOME=/srv"}, {"env", "EXTRA=1"}}), eight_cpu_host());
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->environment, (std::vector<std::string>{"PATH=/usr/bin", "HOME=/srv", "EXTRA=1"}));
    EXPECT_FALSE(make_plan(settings_with({{"env", "NOEQUALS"}}), eight_cpu_host()));
}

TEST(MakePlan, EnvFileVariablesComeAfterPreforkctlsEnvironmentALaterFileWinsAndEnvWinsOverEveryFile) {
    HostFacts facts = eight_cpu_host();
    facts.env_files = {{"HOME=/home/app\nA=base\nB=base\n# comment\n", 0}, {"B=local\nC='local'\n", 0}};
    auto plan = make_plan(settings_with({{"env-file", "base.env"}, {"env-file", "local.env"}, {"env", "A=flag"}}),
                          facts);
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->environment,
              (std::vector<std::string>{"PATH=/usr/bin", "HOME=/home/app", "A=flag", "B=local", "C=local"}));
    EXPECT_EQ(plan->env_files, (std::vector<std::string>{"base.env", "local.env"}));
    const std::string text = describe_plan(*plan);
    EXPECT_THAT(text, HasSubstr("env files:    base.env, local.env (a later file wins, --env over them all)\n"));
    EXPECT_THAT(text, HasSubstr("  env:        HOME=/home/app A=flag B=local C=local PREFORK_SLOT=0 "));
}

TEST(MakePlan, AnEnvFileThatCannotBeReadNamesTheOptionOrTheConfigKeyAndABadLineNamesFileAndLine) {
    HostFacts facts = eight_cpu_host();
    facts.env_files = {{"", ENOENT}};
    auto missing = make_plan(settings_with({{"env-file", "app.env"}}), facts);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "--env-file: cannot read 'app.env': No such file or directory");
    EXPECT_EQ(missing.error().exit, ExitCode::usage);

    config::Settings from_file = settings_with({});
    from_file.env_file.push_back({"app.env", "prefork.toml:4:12"});
    auto missing_from_file = make_plan(from_file, facts);
    ASSERT_FALSE(missing_from_file);
    EXPECT_EQ(missing_from_file.error().message,
              "prefork.toml:4:12: env-file: cannot read 'app.env': No such file or directory");
    EXPECT_EQ(missing_from_file.error().exit, ExitCode::config);

    facts.env_files = {{"A=1\nB\n", 0}};
    auto bad_line = make_plan(settings_with({{"env-file", "app.env"}}), facts);
    ASSERT_FALSE(bad_line);
    EXPECT_EQ(bad_line.error().message, "app.env:2: expected KEY=VALUE, found no '='");
    EXPECT_EQ(bad_line.error().exit, ExitCode::config);

    auto empty = make_plan(settings_with({{"env-file", ""}}), facts);
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().message, "--env-file: must not be empty");
}

TEST(MakePlan, SlotEnvironmentCarriesSlotWorkersCpusAndListenNames) {
    auto plan = make_plan(settings_with({{"listen", ":8080,name=web"}, {"listen", "unix:/run/a.sock"}}),
                          eight_cpu_host());
    ASSERT_TRUE(plan);
    const auto env = slot_environment(*plan, SlotContext{1, 2, "0.0.0.0", "8080", "5", {}, 0});
    const std::vector<std::string> tail(env.end() - 6, env.end());
    EXPECT_EQ(tail, (std::vector<std::string>{"PREFORK_SLOT=1", "PREFORK_WORKERS=2", "PREFORK_GENERATION=0",
                                              "PREFORK_CPUS=5", "LISTEN_FDS=2", "LISTEN_FDNAMES=web:unknown"}));
}

TEST(MakePlan, BackoffNeedsAPositiveMinimumNotAboveTheMaximum) {
    EXPECT_FALSE(make_plan(settings_with({{"backoff", "0ms..1s"}}), eight_cpu_host()));
    EXPECT_FALSE(make_plan(settings_with({{"backoff", "2s..1s"}}), eight_cpu_host()));
    auto plan = make_plan(settings_with({{"backoff", "250ms..2m"}}), eight_cpu_host());
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->restart.backoff_min, Millis(250));
    EXPECT_EQ(plan->restart.backoff_max, Millis(120'000));
}

TEST(MakePlan, LogOverflowDefaultsToBlockAcceptsDropAndRejectsOtherValuesNamingTheOption) {
    auto plan = make_plan(settings_with({}), eight_cpu_host());
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->log.overflow, LogOverflow::block);
    plan = make_plan(settings_with({{"log-overflow", "drop"}}), eight_cpu_host());
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->log.overflow, LogOverflow::drop);
    plan = make_plan(settings_with({{"log-overflow", "lose"}}), eight_cpu_host());
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--log-overflow"));
}

TEST(ExpandArgv, ReplacesKnownPlaceholdersAndLeavesOtherBracesAlone) {
    const SlotContext context{3, 4, "127.0.0.1", "8080", "2", {}, 0};
    EXPECT_EQ(expand_argv({"srv", "--pid=/run/{slot}.pid", "{port}{port}", "{unknown}", "{", "{cpus}/{workers}",
                           "{host}"},
                          context),
              (std::vector<std::string>{"srv", "--pid=/run/3.pid", "80808080", "{unknown}", "{", "2/4",
                                        "127.0.0.1"}));
}

TEST(DescribePlan, NamesTheSourceThatDecidedTheCpuBudget) {
    HostFacts facts = eight_cpu_host();
    facts.cpus.quota = CpuQuota{150000, 100000, "cgroup v2 cpu.max of /sys/fs/cgroup/app"};
    auto plan = make_plan(settings_with({}), facts);
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->workers, 2);
    const std::string text = describe_plan(*plan);
    EXPECT_THAT(text, HasSubstr("cgroup v2 cpu.max of /sys/fs/cgroup/app"));
    EXPECT_THAT(text, HasSubstr("workers:      2 (auto: "));
}

TEST(MakePlan, ExitListsTakeCodesAndSignalNamesAndKeepThemApart) {
    auto plan = make_plan(settings_with({{"success-exit", "143, USR1,3"}, {"restart-prevent", "SIGUSR2,0"},
                                         {"restart-force", "9"}}),
                          eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    const RestartSpec& r = plan->restart;
    EXPECT_TRUE(r.success.matches(false, 143));
    EXPECT_TRUE(r.success.matches(false, 3));
    EXPECT_TRUE(r.success.matches(true, SIGUSR1));
    EXPECT_FALSE(r.success.matches(true, SIGTERM)) << "143 is an exit code; only TERM would name the signal";
    EXPECT_FALSE(r.success.matches(false, SIGUSR1)) << "USR1 is a signal, not exit code 10";
    EXPECT_TRUE(r.prevent.matches(true, SIGUSR2));
    EXPECT_TRUE(r.prevent.matches(false, 0));
    EXPECT_TRUE(r.force.matches(false, 9));
    EXPECT_FALSE(r.force.matches(true, SIGKILL));
    auto defaults = make_plan(settings_with({}), eight_cpu_host());
    EXPECT_TRUE(defaults->restart.success.empty());
    EXPECT_TRUE(defaults->restart.prevent.empty());
    EXPECT_TRUE(defaults->restart.force.empty());
}

TEST(MakePlan, BadExitListsAreErrorsNamingTheOption) {
    const std::vector<std::pair<std::pair<std::string, std::string>, std::string>> cases = {
        {{"success-exit", "256"}, "--success-exit: exit codes are 0 to 255, got '256'"},
        {{"success-exit", "-1"}, "--success-exit: '-1' is neither an exit code (0-255) nor a signal name"},
        {{"restart-prevent", "TERM,FOO"}, "--restart-prevent: 'FOO' is neither"},
        {{"restart-force", "1,,2"}, "--restart-force: expected exit codes 0-255 and signal names"},
        {{"restart-force", ""}, "--restart-force: expected exit codes"},
    };
    for (const auto& [flag, message] : cases) {
        auto plan = make_plan(settings_with({flag}), eight_cpu_host());
        ASSERT_FALSE(plan) << flag.second;
        EXPECT_THAT(plan.error().message, HasSubstr(message));
        EXPECT_EQ(plan.error().exit, ExitCode::usage);
    }
}

TEST(MakePlan, AStatusCannotBeBothPreventedAndForced) {
    auto plan = make_plan(settings_with({{"restart-prevent", "3,TERM"}, {"restart-force", "TERM"}}), eight_cpu_host());
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--restart-force: SIGTERM is also listed in --restart-prevent"));
    plan = make_plan(settings_with({{"restart-prevent", "3"}, {"restart-force", "2,3"}}), eight_cpu_host());
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("exit code 3 is also listed"));
    EXPECT_TRUE(make_plan(settings_with({{"restart-prevent", "3"}, {"restart-force", "SIGQUIT"}}), eight_cpu_host()));
}

TEST(MakePlan, SignalScopeDefaultsToTheProcessGroup) {
    EXPECT_EQ(make_plan(settings_with({}), eight_cpu_host())->forward.scope, SignalScope::group);
    EXPECT_EQ(make_plan(settings_with({{"signal-scope", "worker"}}), eight_cpu_host())->forward.scope,
              SignalScope::worker);
    auto bad = make_plan(settings_with({{"signal-scope", "session"}}), eight_cpu_host());
    ASSERT_FALSE(bad);
    EXPECT_THAT(bad.error().message, HasSubstr("--signal-scope: must be one of group|worker, got 'session'"));
}

TEST(MakePlan, RewritesMapForwardedSignalsAndZeroDropsThem) {
    auto plan = make_plan(settings_with({{"rewrite-signal", "USR1:USR2"}, {"rewrite-signal", "SIGWINCH:0,usr2:HUP"},
                                         {"rewrite-signal", "QUIT:TERM"}}),
                          eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->forward.rewrites, (std::map<int, int>{{SIGUSR1, SIGUSR2}, {SIGUSR2, SIGHUP}, {SIGWINCH, 0},
                                                          {SIGQUIT, SIGTERM}}));
}

TEST(MakePlan, RewritesOfSignalsThatAreNotForwardedAreRejected) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"TERM:QUIT", "SIGTERM is not forwarded to the workers, so it cannot be rewritten (use --stop-signal"},
        {"HUP:0", "SIGHUP is not forwarded"},
        {"CHLD:USR1", "SIGCHLD is not forwarded"},
        {"SEGV:0", "SIGSEGV is not forwarded"},
        {"XCPU:0", "SIGXCPU is not forwarded"},
        {"PIPE:0", "SIGPIPE is not forwarded"},
        {"USR1", "expected FROM:TO"},
        {"USR1:", "unknown signal ''"},
        {"USR1:NOPE", "unknown signal 'NOPE'"},
        {"USR1:0,USR1:HUP", "SIGUSR1 is rewritten twice"},
    };
    for (const auto& [value, message] : cases) {
        auto plan = make_plan(settings_with({{"rewrite-signal", value}}), eight_cpu_host());
        ASSERT_FALSE(plan) << value;
        EXPECT_THAT(plan.error().message, HasSubstr("--rewrite-signal: " + message)) << value;
    }
}

TEST(MakePlan, CpusWithoutAffinityConfinesEveryWorkerToTheWholeSet) {
    auto plan = make_plan(settings_with({{"cpus", "5,2-3"}, {"workers", "2"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    for (const auto& slot : plan->slots) EXPECT_EQ(slot.cpus, (CpuList{2, 3, 5})) << slot.slot;
    const SlotContext context = make_slot_context(*plan, plan->slots[1], {});
    EXPECT_EQ(context.cpus, "2-3,5");
    const auto env = slot_environment(*plan, context);
    EXPECT_NE(std::find(env.begin(), env.end(), "PREFORK_CPUS=2-3,5"), env.end());
    EXPECT_THAT(describe_plan(*plan), HasSubstr("slot 1:       cpus 2-3,5\n"));
}

TEST(MakePlan, WithoutCpusOrAffinityWorkersAreNotConfined) {
    auto plan = make_plan(settings_with({{"workers", "2"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    for (const auto& slot : plan->slots) EXPECT_TRUE(slot.cpus.empty());
    const auto env = slot_environment(*plan, make_slot_context(*plan, plan->slots[0], {}));
    for (const std::string& entry : env) EXPECT_FALSE(entry.starts_with("PREFORK_CPUS=")) << entry;
    EXPECT_THAT(describe_plan(*plan), HasSubstr("slot 0:       cpu any\n"));
}

TEST(MakePlan, StopSignalsThatCannotEndAProcessAreRejected) {
    for (const char* name : {"STOP", "CONT", "CHLD", "TSTP", "TTIN", "TTOU", "URG", "WINCH"}) {
        auto plan = make_plan(settings_with({{"stop-signal", name}}), eight_cpu_host());
        ASSERT_FALSE(plan) << name;
        EXPECT_THAT(plan.error().message, HasSubstr("--stop-signal: SIG" + std::string(name) + " does not end a process"));
        EXPECT_EQ(plan.error().exit, ExitCode::usage);
    }
    for (const char* name : {"TERM", "INT", "QUIT", "KILL", "USR1", "HUP"}) {
        EXPECT_TRUE(make_plan(settings_with({{"stop-signal", name}}), eight_cpu_host())) << name;
    }
}

TEST(MakePlan, ARestartWindowOfZeroIsAnError) {
    auto plan = make_plan(settings_with({{"restart-window", "0s"}}), eight_cpu_host());
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--restart-window: must be above 0"));
}

TEST(MakePlan, FdEnvInChildModeIsAnErrorAndReadyTimeoutWithoutNotifyAWarning) {
    auto child = make_plan(settings_with({{"socket-mode", "child"}, {"listen", ":8080"}, {"fd-env", "einhorn"}}),
                           eight_cpu_host());
    ASSERT_FALSE(child);
    EXPECT_THAT(child.error().message, HasSubstr("--fd-env: workers bind HOST:PORT themselves"));
    auto plan = make_plan(settings_with({{"ready-timeout", "5s"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    ASSERT_EQ(plan->warnings.size(), 1u);
    EXPECT_THAT(plan->warnings[0], HasSubstr("--ready-timeout: has no effect without --ready notify"));
    plan = make_plan(settings_with({{"ready-timeout", "5s"}, {"ready", "notify"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_TRUE(plan->warnings.empty());
}

TEST(MakePlan, AChdirThatIsNoDirectoryIsAnErrorBeforeAnythingStarts) {
    HostFacts facts = eight_cpu_host();
    facts.chdir_error = ENOTDIR;
    auto plan = make_plan(settings_with({{"chdir", "/etc/passwd"}}), facts);
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().message, "--chdir: cannot use '/etc/passwd' as the workers' directory: Not a directory");
    EXPECT_EQ(plan.error().exit, ExitCode::usage);
}

TEST(MakePlan, UserNeedsRootAndNumbersMustFit) {
    HostFacts facts = eight_cpu_host();
    facts.user = UserLookup{};
    auto plan = make_plan(settings_with({{"user", "12345:12345"}}), facts);
    ASSERT_TRUE(plan) << plan.error().message;
    ASSERT_TRUE(plan->user);
    EXPECT_EQ(plan->user->uid, 12345u);
    EXPECT_EQ(plan->user->gid, 12345u);
    plan = make_plan(settings_with({{"user", "99999999999999999999"}}), facts);
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--user: uids are 0 to 4294967294"));
    EXPECT_EQ(plan.error().exit, ExitCode::usage);
    facts.euid = 1000;
    facts.egid = 1000;
    facts.can_switch_user = false;
    plan = make_plan(settings_with({{"user", "12345"}}), facts);
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--user: switching to uid 12345, gid 0 needs root"));
}

TEST(MakePlan, TooFewDescriptorsForTheWorkersIsAnErrorNamingWorkersAndTheNumberNeeded) {
    HostFacts facts = eight_cpu_host();
    facts.fd_limits = FdLimits{1024, 1024, 1024};
    auto plan = make_plan(settings_with({{"workers", "300"}}), facts);
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--workers: 300 workers need about "));
    EXPECT_THAT(plan.error().message, HasSubstr("file descriptors, but preforkctl may open only 1024"));
    EXPECT_EQ(plan.error().exit, ExitCode::usage);

    facts.fd_limits = FdLimits{1024, 65536, 65536};
    plan = make_plan(settings_with({{"workers", "300"}}), facts);
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->worker_fd_limit, std::optional<std::uint64_t>(1024));
    EXPECT_GT(plan->fds_needed, 4u * 300u) << "two pipes of two ends per worker";
    EXPECT_LE(plan->fds_needed, 65536u);
}

TEST(MakePlan, InheritedOutputAndNotifySocketsChangeTheDescriptorsNeeded) {
    auto piped = make_plan(settings_with({{"workers", "10"}}), eight_cpu_host());
    auto inherit = make_plan(settings_with({{"workers", "10"}, {"log-format", "inherit"}}), eight_cpu_host());
    auto notify = make_plan(settings_with({{"workers", "10"}, {"ready", "notify"}}), eight_cpu_host());
    ASSERT_TRUE(piped && inherit && notify);
    EXPECT_LT(inherit->fds_needed, piped->fds_needed);
    EXPECT_GT(notify->fds_needed, piped->fds_needed);
}

TEST(DescribePlan, ListsTheEnvEntriesOfEachSlotAndEveryForwardedSignal) {
    auto plan = make_plan(settings_with({{"env", "GREETING=hi"}, {"env", "HOME=/srv"}, {"workers", "2"},
                                         {"rewrite-signal", "USR1:HUP,WINCH:0"}, {"signal-scope", "worker"}}),
                          eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    const std::string text = describe_plan(*plan);
    EXPECT_THAT(text, HasSubstr("  env:        HOME=/srv GREETING=hi PREFORK_SLOT=0 "));
    EXPECT_THAT(text, HasSubstr("  env:        HOME=/srv GREETING=hi PREFORK_SLOT=1 "));
    EXPECT_EQ(text.find("PATH=/usr/bin"), std::string::npos) << "inherited entries are summarised, not listed";
    std::string forwarded;
    for (const int signal : kForwardedSignals) {
        std::string name = signal_name(signal).substr(3);
        if (signal == SIGUSR1) name += " as HUP";
        if (signal == SIGWINCH) name += " dropped";
        forwarded += (forwarded.empty() ? "" : ", ") + name;
    }
    EXPECT_THAT(text, HasSubstr("forwarding:   " + forwarded + " to each worker process only\n"));
    EXPECT_THAT(text, HasSubstr("QUIT, ALRM, PWR"));
}

TEST(MakePlan, TheControlSocketIsNamedAfterTheServerUnderTheRuntimeDirectory) {
    HostFacts facts = eight_cpu_host();
    facts.euid = 1000;
    auto unnamed = make_plan(settings_with({}), facts);
    ASSERT_TRUE(unnamed) << unnamed.error().message;
    EXPECT_EQ(unnamed->control.socket, "/tmp/preforkctl-1000/server.sock");
    EXPECT_FALSE(unnamed->control.socket_required) << "an unnamed preforkctl gives the default socket way";
    facts.environment.push_back("XDG_RUNTIME_DIR=/run/user/1000");
    auto named = make_plan(settings_with({{"name", "api/v2"}}), facts);
    ASSERT_TRUE(named);
    EXPECT_EQ(named->control.socket, "/run/user/1000/preforkctl/api_v2.sock");
    EXPECT_TRUE(named->control.socket_required);
    facts.euid = 0;
    facts.environment.pop_back();
    EXPECT_EQ(make_plan(settings_with({}), facts)->control.socket, "/run/preforkctl/server.sock");
    EXPECT_EQ(make_plan(settings_with({{"control", "/srv/ctl.sock"}}), facts)->control.socket, "/srv/ctl.sock");
    EXPECT_FALSE(make_plan(settings_with({{"control", "none"}}), facts)->control.socket.has_value());
    EXPECT_EQ(control_socket_path("..", 0, "relative/ignored"), "/run/preforkctl/_.sock");
    // preforkctl moves to / before it listens: a relative path is taken from where it was started.
    facts.working_directory = "/srv/app";
    EXPECT_EQ(make_plan(settings_with({{"control", "run/ctl.sock"}}), facts)->control.socket, "/srv/app/run/ctl.sock");
    EXPECT_EQ(make_plan(settings_with({{"control", "/srv/ctl.sock"}}), facts)->control.socket, "/srv/ctl.sock");
}

// The workers' NOTIFY_SOCKET files: only with --ready notify or --watchdog, named after preforkctl's pid, under
// /run for root, $XDG_RUNTIME_DIR (absolute) for others, and /tmp when that is not set or the workers run as
// another user, who could not enter it.
TEST(MakePlan, NotifySocketsGoInADirectoryOfThisPreforkctlThatTheWorkersCanEnter) {
    HostFacts facts = eight_cpu_host();
    facts.pid = 4242;
    EXPECT_EQ(make_plan(settings_with({}), facts)->notify_directory, "") << "no notify socket, no directory";
    EXPECT_EQ(make_plan(settings_with({{"ready", "notify"}}), facts)->notify_directory, "/run/preforkctl-notify.4242");
    EXPECT_EQ(make_plan(settings_with({{"watchdog", "5s"}}), facts)->notify_directory, "/run/preforkctl-notify.4242");
    facts.user = UserLookup{};
    EXPECT_EQ(make_plan(settings_with({{"ready", "notify"}, {"user", "12345:12345"}}), facts)->notify_directory,
              "/run/preforkctl-notify.4242");
    facts.user.reset();
    facts.euid = 1000;
    EXPECT_EQ(make_plan(settings_with({{"ready", "notify"}}), facts)->notify_directory, "/tmp/preforkctl-notify.4242");
    facts.environment.push_back("XDG_RUNTIME_DIR=/run/user/1000");
    EXPECT_EQ(make_plan(settings_with({{"ready", "notify"}}), facts)->notify_directory,
              "/run/user/1000/preforkctl-notify.4242");
    EXPECT_EQ(notify_directory(1000, "/run/user/1000", 7, true), "/tmp/preforkctl-notify.7");
    EXPECT_EQ(notify_directory(1000, "relative/ignored", 7, false), "/tmp/preforkctl-notify.7");
}

TEST(MakePlan, MetricsTakesTheListenAddressFormsAndRefusesTheRestNamingTheOption) {
    auto any = make_plan(settings_with({{"metrics", ":9100"}}), eight_cpu_host());
    ASSERT_TRUE(any) << any.error().message;
    EXPECT_EQ(any->control.metrics->host, "0.0.0.0");
    EXPECT_EQ(any->control.metrics->port, 9100);
    auto v6 = make_plan(settings_with({{"metrics", "[::1]:0"}}), eight_cpu_host());
    ASSERT_TRUE(v6) << v6.error().message;
    EXPECT_EQ(v6->control.metrics->host, "::1");
    for (const char* bad : {"abc", "", "127.0.0.1", "127.0.0.1:65536", "unix:/tmp/m.sock",
                            "127.0.0.1:9100,backlog=5", "[::1:80"}) {
        auto plan = make_plan(settings_with({{"metrics", bad}}), eight_cpu_host());
        ASSERT_FALSE(plan) << bad;
        EXPECT_THAT(plan.error().message, HasSubstr("--metrics")) << bad;
        EXPECT_THAT(plan.error().message, HasSubstr("is not HOST:PORT")) << bad;
        EXPECT_EQ(plan.error().exit, ExitCode::usage) << bad;
    }
    EXPECT_THAT(make_plan(settings_with({{"control", ""}}), eight_cpu_host()).error().message, HasSubstr("--control"));
}

TEST(MakePlan, WorkersMinToMaxIsElasticAndStartsMinSlots) {
    auto plan = make_plan(settings_with({{"workers", "2..6"}, {"listen", ":8080"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    ASSERT_TRUE(plan->elastic);
    EXPECT_EQ(plan->elastic->min, 2);
    EXPECT_EQ(plan->elastic->max, 6);
    EXPECT_EQ(plan->elastic->scale_up_after, Millis(1'000));
    EXPECT_EQ(plan->elastic->scale_down_after, Millis(30'000));
    EXPECT_EQ(plan->workers, 2);
    EXPECT_EQ(plan->slots.size(), 2u);
    EXPECT_EQ(plan->workers_source, "elastic 2..6, set by --workers");
    EXPECT_TRUE(plan->warnings.empty());
}

TEST(MakePlan, FixedWorkerCountsLeaveTheElasticSpecEmpty) {
    for (const char* workers : {"3", "auto"}) {
        auto plan = make_plan(settings_with({{"workers", workers}, {"listen", ":8080"}}), eight_cpu_host());
        ASSERT_TRUE(plan) << plan.error().message;
        EXPECT_FALSE(plan->elastic) << workers;
    }
}

TEST(MakePlan, WorkersZeroToMaxIsOnDemandWithNoSlotAtStart) {
    auto plan = make_plan(settings_with({{"workers", "0..4"}, {"listen", "unix:/run/a.sock"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->elastic->min, 0);
    EXPECT_EQ(plan->workers, 0);
    EXPECT_TRUE(plan->slots.empty());
}

TEST(MakePlan, AnAutoMaximumIsTheCpuBudgetsAutoCount) {
    auto plan = make_plan(settings_with({{"workers", "1..auto"}, {"listen", ":8080"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->elastic->max, 8);
    EXPECT_THAT(plan->workers_source, HasSubstr("elastic 1..8 (MAX auto: "));
    auto too_high = make_plan(settings_with({{"workers", "8..auto"}, {"listen", ":8080"}}), eight_cpu_host());
    ASSERT_FALSE(too_high);
    EXPECT_EQ(too_high.error().message,
              "--workers: MIN must be below MAX (a fixed count is written -n N), got '8..auto' (auto is 8 here)");
}

TEST(MakePlan, BadWorkerRangesAreUsageErrorsNamingWorkers) {
    const std::pair<const char*, const char*> cases[] = {
        {"3..1", "MIN must be below MAX"},
        {"0..0", "MIN must be below MAX"},
        {"2..2", "MIN must be below MAX"},
        {"x..4", "MIN of MIN..MAX must be a number from 0 to 4096, got 'x..4'"},
        {"-1..4", "MIN of MIN..MAX must be a number"},
        {"..4", "MIN of MIN..MAX must be a number"},
        {"1..", "MAX of MIN..MAX must be 'auto' or a number from 1 to 4096, got '1..'"},
        {"1..4097", "MAX of MIN..MAX must be"},
        {"1...4", "MAX of MIN..MAX must be"},
    };
    for (const auto& [workers, message] : cases) {
        auto plan = make_plan(settings_with({{"workers", workers}, {"listen", ":8080"}}), eight_cpu_host());
        ASSERT_FALSE(plan) << workers;
        EXPECT_THAT(plan.error().message, ::testing::StartsWith("--workers: ")) << workers;
        EXPECT_THAT(plan.error().message, HasSubstr(message)) << workers;
        EXPECT_EQ(plan.error().exit, ExitCode::usage) << workers;
    }
}

TEST(MakePlan, AWorkerRangeInTheConfigFileNamesFileLineAndColumn) {
    auto s = settings_with({{"listen", ":8080"}});
    s.workers = config::Setting<std::string>{"4..2", "prefork.toml:2:11"};
    auto plan = make_plan(s, eight_cpu_host());
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().message,
              "prefork.toml:2:11: workers: MIN must be below MAX (a fixed count is written -n N), got '4..2'");
    EXPECT_EQ(plan.error().exit, ExitCode::config);
}

TEST(MakePlan, ElasticWorkersNeedListenersThatPreforkctlHolds) {
    auto none = make_plan(settings_with({{"workers", "1..4"}}), eight_cpu_host());
    ASSERT_FALSE(none);
    EXPECT_THAT(none.error().message, HasSubstr("--workers: MIN..MAX follows the accept queues of the listeners"));
    EXPECT_EQ(none.error().exit, ExitCode::usage);
    auto child = make_plan(settings_with({{"workers", "1..4"}, {"socket-mode", "child"}, {"listen", "127.0.0.1:8080"}}),
                           eight_cpu_host());
    ASSERT_FALSE(child);
    EXPECT_THAT(child.error().message, HasSubstr("--workers: MIN..MAX follows the accept queues of the sockets "
                                                 "preforkctl holds, and with --socket-mode child it holds none"));
    auto reuseport = make_plan(settings_with({{"workers", "1..4"}, {"socket-mode", "reuseport"}, {"listen", ":8080"}}),
                               eight_cpu_host());
    EXPECT_TRUE(reuseport) << reuseport.error().message;
    HostFacts adopted = eight_cpu_host();
    adopted.inherited.push_back(InheritedSocket{3, "http", "0.0.0.0:8080", "0.0.0.0", 8080});
    auto from_systemd = make_plan(settings_with({{"workers", "0..4"}}), adopted);
    EXPECT_TRUE(from_systemd) << from_systemd.error().message;
}

TEST(MakePlan, OnDemandWorkersNeedSharedSocketsBecauseReuseportSocketsBelongToSlots) {
    auto plan = make_plan(settings_with({{"workers", "0..4"}, {"socket-mode", "reuseport"}, {"listen", ":8080"}}),
                          eight_cpu_host());
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--workers: 0..MAX needs --socket-mode shared: reuseport sockets "
                                                "belong to the slots"));
    EXPECT_EQ(plan.error().exit, ExitCode::usage);
}

TEST(MakePlan, ScaleTimingsMustBeAboveZeroAndAreAWarningWithAFixedCount) {
    auto plan = make_plan(settings_with({{"workers", "1..4"}, {"listen", ":8080"}, {"scale-up-after", "250ms"},
                                         {"scale-down-after", "2m"}}),
                          eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->elastic->scale_up_after, Millis(250));
    EXPECT_EQ(plan->elastic->scale_down_after, Millis(120'000));
    for (const char* option : {"scale-up-after", "scale-down-after"}) {
        auto zero =
            make_plan(settings_with({{"workers", "1..4"}, {"listen", ":8080"}, {option, "0"}}), eight_cpu_host());
        ASSERT_FALSE(zero) << option;
        EXPECT_EQ(zero.error().message, std::string("--") + option + ": must be above 0");
        auto bad =
            make_plan(settings_with({{"workers", "1..4"}, {"listen", ":8080"}, {option, "soon"}}), eight_cpu_host());
        ASSERT_FALSE(bad) << option;
        EXPECT_THAT(bad.error().message, HasSubstr("invalid duration 'soon'"));
    }
    auto fixed = make_plan(settings_with({{"workers", "2"}, {"scale-up-after", "5s"}, {"scale-down-after", "1m"}}),
                           eight_cpu_host());
    ASSERT_TRUE(fixed) << fixed.error().message;
    ASSERT_EQ(fixed->warnings.size(), 2u);
    EXPECT_THAT(fixed->warnings[0], HasSubstr("--scale-up-after: has no effect without -n MIN..MAX"));
    EXPECT_THAT(fixed->warnings[1], HasSubstr("--scale-down-after: has no effect without -n MIN..MAX"));
}

TEST(MakePlan, TheDescriptorCheckOfAnElasticPlanCountsItsMaximum) {
    HostFacts facts = eight_cpu_host();
    facts.fd_limits = FdLimits{1024, 1024, 1024};
    auto plan = make_plan(settings_with({{"workers", "1..300"}, {"listen", ":8080"}}), facts);
    ASSERT_FALSE(plan);
    EXPECT_THAT(plan.error().message, HasSubstr("--workers: up to 300 workers need about "));
    auto fixed = make_plan(settings_with({{"workers", "1"}, {"listen", ":8080"}}), eight_cpu_host());
    auto elastic = make_plan(settings_with({{"workers", "1..10"}, {"listen", ":8080"}}), eight_cpu_host());
    ASSERT_TRUE(fixed && elastic);
    EXPECT_EQ(elastic->fds_needed, estimate_descriptors(*fixed, 10));
}

TEST(MakePlan, MaxRssTakesSizesWithBinarySuffixesAndMustBeAboveZero) {
    auto plan = make_plan(settings_with({{"max-rss", "512M"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->recycle.max_rss, std::optional<std::uint64_t>(512ull << 20));
    EXPECT_FALSE(make_plan(settings_with({}), eight_cpu_host())->recycle.max_rss);
    auto zero = make_plan(settings_with({{"max-rss", "0"}}), eight_cpu_host());
    ASSERT_FALSE(zero);
    EXPECT_EQ(zero.error().message, "--max-rss: must be above 0");
    auto bad = make_plan(settings_with({{"max-rss", "lots"}}), eight_cpu_host());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "--max-rss: invalid size 'lots' (use e.g. 512M, 2G)");
    EXPECT_EQ(bad.error().exit, ExitCode::usage);
}

TEST(MakePlan, MaxLifetimeMustBeAboveZeroAndAJitterWithoutItIsAWarning) {
    auto plan = make_plan(settings_with({{"max-lifetime", "1h"}, {"lifetime-jitter", "5m"}}), eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->recycle.max_lifetime, std::optional<Millis>(Millis(3'600'000)));
    EXPECT_EQ(plan->recycle.lifetime_jitter, Millis(300'000));
    EXPECT_TRUE(plan->warnings.empty());
    auto no_jitter = make_plan(settings_with({{"max-lifetime", "1h"}, {"lifetime-jitter", "0"}}), eight_cpu_host());
    ASSERT_TRUE(no_jitter) << no_jitter.error().message;
    EXPECT_EQ(no_jitter->recycle.lifetime_jitter, Millis(0));
    auto zero = make_plan(settings_with({{"max-lifetime", "0s"}}), eight_cpu_host());
    ASSERT_FALSE(zero);
    EXPECT_EQ(zero.error().message, "--max-lifetime: must be above 0");
    auto alone = make_plan(settings_with({{"lifetime-jitter", "30s"}}), eight_cpu_host());
    ASSERT_TRUE(alone) << alone.error().message;
    ASSERT_EQ(alone->warnings.size(), 1u);
    EXPECT_THAT(alone->warnings[0], HasSubstr("--lifetime-jitter: has no effect without --max-lifetime"));
    EXPECT_FALSE(make_plan(settings_with({{"lifetime-jitter", "-1s"}}), eight_cpu_host()));
}

TEST(MakePlan, WatchdogMustBeAboveZeroAndGivesEachWorkerWatchdogUsecAndANotifySocket) {
    HostFacts facts = eight_cpu_host();
    facts.environment.push_back("WATCHDOG_USEC=1000");  // preforkctl's own, from systemd: not the workers'
    facts.environment.push_back("WATCHDOG_PID=1");
    auto plan = make_plan(settings_with({{"watchdog", "30s"}, {"workers", "1"}}), facts);
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->watchdog, std::optional<Millis>(Millis(30'000)));
    const auto env = slot_environment(*plan, make_slot_context(*plan, plan->slots[0], {}));
    EXPECT_EQ(std::count(env.begin(), env.end(), "WATCHDOG_USEC=30000000"), 1);
    const auto watchdog_entries = [](const std::string& entry) { return entry.starts_with("WATCHDOG_"); };
    EXPECT_EQ(std::count_if(env.begin(), env.end(), watchdog_entries), 1);
    EXPECT_THAT(describe_plan(*plan), HasSubstr("NOTIFY_SOCKET=<the worker's own, in /run/preforkctl-notify."));
    auto without = make_plan(settings_with({{"workers", "1"}}), eight_cpu_host());
    ASSERT_TRUE(without);
    EXPECT_GT(plan->fds_needed, without->fds_needed) << "the worker's own notify socket";
    auto zero = make_plan(settings_with({{"watchdog", "0"}}), eight_cpu_host());
    ASSERT_FALSE(zero);
    EXPECT_EQ(zero.error().message, "--watchdog: must be above 0");
}

TEST(DescribePlan, ShowsTheElasticRangeTheRecycleSettingsAndTheWatchdogWhenSet) {
    auto plan = make_plan(settings_with({{"workers", "0..4"}, {"listen", ":8080"}, {"scale-up-after", "2s"},
                                         {"max-rss", "512M"}, {"max-lifetime", "1h"}, {"lifetime-jitter", "5m"},
                                         {"watchdog", "10s"}}),
                          eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    const std::string text = describe_plan(*plan);
    EXPECT_THAT(text, HasSubstr("workers:      0 (elastic 0..4, set by --workers)\n"));
    EXPECT_THAT(text, HasSubstr("elastic:      0..4 workers, on demand (none until a connection waits), one more "
                                "after 2s of a non-empty accept queue, one fewer (the newest) after 30s of empty "
                                "queues\n"));
    EXPECT_THAT(text, HasSubstr("recycle:      above 512 MiB RSS (the worker's process tree); after 1h + 0..5m; "
                                "one slot at a time, the new worker first\n"));
    EXPECT_THAT(text, HasSubstr("watchdog:     WATCHDOG=1 at least every 10s once ready, else SIGABRT"));
    EXPECT_THAT(text, HasSubstr("descriptors:  about "));
    EXPECT_THAT(text, HasSubstr(" for up to 4 workers"));
    const std::string fixed = describe_plan(*make_plan(settings_with({{"workers", "2"}}), eight_cpu_host()));
    for (const char* line : {"elastic:", "recycle:", "watchdog:"}) EXPECT_EQ(fixed.find(line), std::string::npos);
}

TEST(MakePlan, SteerCpuWithReuseportAffinityAndTcpListenersIsPlannedAndShown) {
    auto s = settings_with({{"workers", "4"}, {"socket-mode", "reuseport"}, {"steer", "cpu"}, {"listen", ":8080"}});
    s.affinity = config::Setting<bool>{true, "--affinity"};
    auto plan = make_plan(s, eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->steer, SteerMode::cpu);
    EXPECT_THAT(describe_plan(*plan), HasSubstr("steering:     cpu ("));
    auto plain = make_plan(settings_with({{"workers", "2"}}), eight_cpu_host());
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(plain->steer, SteerMode::none);
    EXPECT_THAT(describe_plan(*plain), HasSubstr("steering:     none\n"));
}

TEST(MakePlan, SteerCpuWithoutReuseportOrAffinityIsAUsageErrorNamingSteer) {
    auto s = settings_with({{"workers", "2"}, {"steer", "cpu"}, {"listen", ":8080"}});
    s.affinity = config::Setting<bool>{true, "--affinity"};
    auto shared = make_plan(s, eight_cpu_host());
    ASSERT_FALSE(shared);
    EXPECT_EQ(shared.error().exit, ExitCode::usage);
    EXPECT_THAT(shared.error().message, HasSubstr("--steer: cpu needs --socket-mode reuseport"));

    auto unpinned = make_plan(settings_with({{"workers", "2"}, {"socket-mode", "reuseport"}, {"steer", "cpu"},
                                             {"listen", ":8080"}}),
                              eight_cpu_host());
    ASSERT_FALSE(unpinned);
    EXPECT_EQ(unpinned.error().exit, ExitCode::usage);
    EXPECT_THAT(unpinned.error().message, HasSubstr("--steer: cpu needs --affinity"));

    auto unknown = make_plan(settings_with({{"steer", "numa"}}), eight_cpu_host());
    ASSERT_FALSE(unknown);
    EXPECT_THAT(unknown.error().message, HasSubstr("--steer: must be one of none|cpu, got 'numa'"));
}

TEST(MakePlan, SteerCpuFromTheConfigFileIsAConfigErrorWithItsPosition) {
    auto s = settings_with({{"workers", "2"}, {"listen", ":8080"}});
    s.steer = config::Setting<std::string>{"cpu", "prefork.toml:4:9"};
    auto plan = make_plan(s, eight_cpu_host());
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().exit, ExitCode::config);
    EXPECT_THAT(plan.error().message, HasSubstr("prefork.toml:4:9: steer: cpu needs --socket-mode reuseport"));
}
