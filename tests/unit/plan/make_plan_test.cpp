#include "plan/make_plan.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>

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
        else if (key == "backoff") s.backoff = setting;
        else if (key == "name") s.name = setting;
        else if (key == "log-overflow") s.log_overflow = setting;
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
    for (const auto& slot : plan->slots) cpus.push_back(*slot.cpu);
    EXPECT_EQ(cpus, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    EXPECT_THAT(plan->workers_source, HasSubstr("auto"));
}

TEST(MakePlan, CpusRestrictionPinsSlotsInsideItAndWrapsWhenWorkersExceedIt) {
    auto s = settings_with({{"cpus", "4-5"}, {"workers", "3"}});
    s.affinity = config::Setting<bool>{true, "--affinity"};
    auto plan = make_plan(s, eight_cpu_host());
    ASSERT_TRUE(plan) << plan.error().message;
    std::vector<int> cpus;
    for (const auto& slot : plan->slots) cpus.push_back(*slot.cpu);
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
