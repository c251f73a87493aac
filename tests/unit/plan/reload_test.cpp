// plan_reload: what a reload takes over from a re-read config file, and what keeps its old value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plan/make_plan.hpp"
#include "plan/reload.hpp"

using namespace preforkctl;
using namespace preforkctl::plan;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

namespace {

HostFacts host() {
    HostFacts facts;
    facts.cpus.affinity = {0, 1, 2, 3};
    facts.command = {"/usr/bin/server", 0};
    facts.environment = {"PATH=/usr/bin"};
    return facts;
}

config::Settings base() {
    config::Settings s;
    s.command = config::Setting<std::vector<std::string>>{{"server"}, "command line"};
    s.workers = config::Setting<std::string>{"2", "--workers"};
    s.listen.push_back({"127.0.0.1:8080", "--listen"});
    return s;
}

Plan planned(const config::Settings& settings) {
    auto plan = make_plan(settings, host());
    EXPECT_TRUE(plan) << plan.error().message;
    return *plan;
}

}  // namespace

TEST(PlanReload, AnUnchangedFileChangesNothing) {
    const ReloadPlan reload = plan_reload(planned(base()), planned(base()));
    EXPECT_THAT(reload.applied, IsEmpty());
    EXPECT_THAT(reload.kept, IsEmpty());
    EXPECT_FALSE(reload.workers_changed);
}

TEST(PlanReload, TheCountEnvironmentCommandAndPoliciesAreTakenOver) {
    config::Settings changed = base();
    changed.workers = config::Setting<std::string>{"3", "--workers"};
    changed.env.push_back({"GREETING=two", "--env"});
    changed.command = config::Setting<std::vector<std::string>>{{"server", "--fast"}, "command line"};
    changed.stop_timeout = config::Setting<std::string>{"3s", "--stop-timeout"};
    changed.affinity = config::Setting<bool>{true, "--affinity"};
    const Plan running = planned(base());
    const ReloadPlan reload = plan_reload(running, planned(changed));
    EXPECT_THAT(reload.applied, ElementsAre("--workers", "the command", "--env/--env-file", "--affinity/--cpus",
                                            "--stop-signal/--stop-timeout"));
    EXPECT_THAT(reload.kept, IsEmpty());
    EXPECT_TRUE(reload.workers_changed);
    EXPECT_EQ(reload.next.workers, 3);
    EXPECT_EQ(reload.next.command, (std::vector<std::string>{"server", "--fast"}));
    EXPECT_EQ(reload.next.stop.timeout, Millis(3000));
    EXPECT_TRUE(reload.next.affinity);
    ASSERT_EQ(reload.next.slots.size(), 3u);
    EXPECT_EQ(reload.next.slots[2].cpus.size(), 1u) << "the new slots are pinned as --affinity says";
    EXPECT_TRUE(std::find(reload.next.environment.begin(), reload.next.environment.end(), "GREETING=two") !=
                reload.next.environment.end());
}

// --ready notify taken over by a reload brings the directory of the notify sockets with it.
TEST(PlanReload, ReadyNotifyTakenOverBringsItsSocketDirectory) {
    config::Settings notify = base();
    notify.ready = config::Setting<std::string>{"notify", "--ready"};
    const Plan running = planned(base());
    ASSERT_EQ(running.notify_directory, "");
    const ReloadPlan reload = plan_reload(running, planned(notify));
    EXPECT_THAT(reload.applied, ElementsAre("--ready"));
    EXPECT_EQ(reload.next.notify_directory, planned(notify).notify_directory);
    EXPECT_NE(reload.next.notify_directory, "");
}

TEST(PlanReload, WhatIsBoundOrSetUpOnceKeepsItsOldValue) {
    config::Settings reuseport = base();
    reuseport.socket_mode = config::Setting<std::string>{"reuseport", "--socket-mode"};
    config::Settings changed = reuseport;
    changed.listen = {{"127.0.0.1:9090", "--listen"}};
    changed.log_format = config::Setting<std::string>{"json", "--log-format"};
    const Plan running = planned(reuseport);
    const ReloadPlan reload = plan_reload(running, planned(changed));
    EXPECT_THAT(reload.applied, IsEmpty());
    EXPECT_THAT(reload.kept, ElementsAre("--listen", "the output settings (--log-format, --name, ...)"));
    EXPECT_THAT(reload.listeners_added, IsEmpty());
    EXPECT_THAT(reload.listeners_removed, IsEmpty());
    EXPECT_EQ(reload.next.listeners, running.listeners);
    EXPECT_EQ(reload.next.log, running.log);
}

TEST(PlanReload, SharedListenersTheFileAddsAreBoundAndThoseItDropsClosed) {
    config::Settings running_settings = base();
    running_settings.listen = {{"127.0.0.1:8080", "--listen"}, {"unix:/run/a.sock", "--listen"}};
    config::Settings changed = base();
    changed.listen = {{"unix:/run/a.sock", "--listen"}, {"127.0.0.1:9090,name=admin", "--listen"}};
    const Plan running = planned(running_settings);
    const Plan reread = planned(changed);
    const ReloadPlan reload = plan_reload(running, reread);
    EXPECT_THAT(reload.applied, ElementsAre("--listen"));
    EXPECT_THAT(reload.kept, IsEmpty());
    EXPECT_THAT(reload.listeners_removed, ElementsAre(0u));
    ASSERT_THAT(reload.listeners_added, ElementsAre(1u));
    EXPECT_EQ(reread.listeners[1].name, "admin");
    EXPECT_EQ(reload.next.listeners, running.listeners) << "the supervisor binds and closes them";
}

TEST(PlanReload, ElasticBoundsKeepTheirValue) {
    config::Settings elastic = base();
    elastic.workers = config::Setting<std::string>{"1..4", "--workers"};
    config::Settings wider = base();
    wider.workers = config::Setting<std::string>{"1..8", "--workers"};
    const ReloadPlan reload = plan_reload(planned(elastic), planned(wider));
    EXPECT_THAT(reload.kept, ElementsAre("--workers (elastic bounds)"));
    EXPECT_FALSE(reload.workers_changed);
}

TEST(PlanReload, AnEnvFileWhoseTextChangedIsTakenOverAndAnUnchangedOneChangesNothing) {
    config::Settings settings = base();
    settings.env_file.push_back({"app.env", "--env-file"});
    HostFacts before = host();
    before.env_files = {{"GREETING=one\n", 0}};
    HostFacts after = before;
    after.env_files = {{"GREETING=two\n", 0}};
    const Plan running = *make_plan(settings, before);
    EXPECT_THAT(plan_reload(running, *make_plan(settings, before)).applied, IsEmpty());
    const ReloadPlan reload = plan_reload(running, *make_plan(settings, after));
    EXPECT_THAT(reload.applied, ElementsAre("--env/--env-file"));
    EXPECT_EQ(reload.next.environment, (std::vector<std::string>{"PATH=/usr/bin", "GREETING=two"}));
    EXPECT_EQ(reload.next.env_added, (std::vector<std::string>{"GREETING=two"}));
}
