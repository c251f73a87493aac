// --preload in the plan: the library's path, the workers' LD_PRELOAD and PREFORKCTL_PRELOAD_LISTENERS, the
// warnings for commands the loader will not preload, and the ELF check behind them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "plan/elf_header.hpp"
#include "plan/make_plan.hpp"

using namespace preforkctl;
using namespace preforkctl::plan;
using ::testing::Not;
using ::testing::HasSubstr;

namespace {

constexpr const char* kLibrary = "/opt/preforkctl/bin/libpreforkctl-preload.so";

HostFacts host(bool found = true) {
    HostFacts facts;
    facts.cpus.affinity = {0, 1};
    facts.command = {"/usr/bin/server", 0};
    facts.environment = {"PATH=/usr/bin", "PREFORKCTL_PRELOAD_LISTENERS=stale"};
    facts.preload = PreloadLookup{found ? kLibrary : "", {kLibrary, "/usr/lib/preforkctl/libpreforkctl-preload.so"}};
    return facts;
}

config::Settings preload_settings(std::vector<std::string> listen, const std::string& mode = "shared") {
    config::Settings s;
    s.command = config::Setting<std::vector<std::string>>{{"server"}, "command line"};
    s.workers = config::Setting<std::string>{"2", "--workers"};
    s.preload = config::Setting<bool>{true, "--preload"};
    s.socket_mode = config::Setting<std::string>{mode, "--socket-mode"};
    for (const std::string& value : listen) s.listen.push_back({value, "--listen"});
    return s;
}

std::string variable(const std::vector<std::string>& env, const std::string& name) {
    for (const std::string& entry : env) {
        if (entry.starts_with(name + "=")) return entry.substr(name.size() + 1);
    }
    return "<unset>";
}

std::vector<std::string> worker_env(const Plan& plan) {
    return slot_environment(plan, make_slot_context(plan, plan.slots.front(), {}));
}

}  // namespace

TEST(PlanPreload, TheWorkersGetTheLibraryInLdPreloadAndEachListenerDescribedWithItsFd) {
    auto plan = make_plan(preload_settings({"127.0.0.1:8080", "[::1]:9090", "unix:/run/a.sock"}), host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->preload_library, std::string(kLibrary));
    const auto env = worker_env(*plan);
    EXPECT_EQ(variable(env, "LD_PRELOAD"), kLibrary);
    EXPECT_EQ(variable(env, "PREFORKCTL_PRELOAD_LISTENERS"),
              "3,inet,stream,14,127.0.0.1:8080;4,inet6,stream,10,[::1]:9090;5,unix,stream,11,/run/a.sock");
    EXPECT_THAT(describe_plan(*plan), HasSubstr(std::string("preload:      ") + kLibrary));
}

TEST(PlanPreload, ChildModeListenersCarryNoFd) {
    auto plan = make_plan(preload_settings({":8080"}, "child"), host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(variable(worker_env(*plan), "PREFORKCTL_PRELOAD_LISTENERS"), "-,inet,stream,12,0.0.0.0:8080");
}

TEST(PlanPreload, AUsersOwnLdPreloadIsKeptAndTheLibraryAppended) {
    auto s = preload_settings({":8080"});
    s.env.push_back({"LD_PRELOAD=/usr/lib/libjemalloc.so", "--env"});
    auto plan = make_plan(s, host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(variable(worker_env(*plan), "LD_PRELOAD"), std::string("/usr/lib/libjemalloc.so:") + kLibrary);
    EXPECT_EQ(with_preload("a.so b.so", "b.so"), "a.so b.so");
    EXPECT_EQ(with_preload("a.so:b.so", "b.so"), "a.so:b.so");
    EXPECT_EQ(with_preload("a.so:b.sox", "b.so"), "a.so:b.sox:b.so");
    EXPECT_EQ(with_preload("", "b.so"), "b.so");
}

TEST(PlanPreload, WithoutPreloadNothingIsAddedAndAStaleListenerVariableIsDropped) {
    auto s = preload_settings({":8080"});
    s.preload.reset();
    auto plan = make_plan(s, host());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_FALSE(plan->preload_library);
    const auto env = worker_env(*plan);
    EXPECT_EQ(variable(env, "LD_PRELOAD"), "<unset>");
    EXPECT_EQ(variable(env, "PREFORKCTL_PRELOAD_LISTENERS"), "<unset>");
    EXPECT_THAT(describe_plan(*plan), Not(HasSubstr("preload:")));
}

TEST(PlanPreload, AMissingLibraryIsAUsageErrorNamingWhereItWasLookedFor) {
    auto plan = make_plan(preload_settings({":8080"}), host(false));
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().exit, ExitCode::usage);
    EXPECT_THAT(plan.error().message, HasSubstr("--preload: libpreforkctl-preload.so is not installed (looked at "));
    EXPECT_THAT(plan.error().message, HasSubstr("/usr/lib/preforkctl/libpreforkctl-preload.so"));
}

TEST(PlanPreload, StaticAndSetIdCommandsAndNoListenersAreWarnedAbout) {
    HostFacts facts = host();
    facts.executable.static_elf = true;
    facts.executable.set_id = true;
    auto plan = make_plan(preload_settings({}), facts);
    ASSERT_TRUE(plan) << plan.error().message;
    ASSERT_EQ(plan->warnings.size(), 3u);
    EXPECT_THAT(plan->warnings[0], HasSubstr("--preload: /usr/bin/server is a static program"));
    EXPECT_THAT(plan->warnings[1], HasSubstr("setuid or setgid"));
    EXPECT_THAT(plan->warnings[2], HasSubstr("no listener"));
}

namespace {

// A minimal 64-bit little-endian ELF header with `types` as its program headers (56 bytes each, at 64).
std::string elf64(std::initializer_list<unsigned> types) {
    std::string head(64 + 56 * types.size(), '\0');
    head.replace(0, 4, "\x7f" "ELF");
    head[4] = 2;
    head[5] = 1;
    head[32] = 64;  // e_phoff
    head[54] = 56;  // e_phentsize
    head[56] = static_cast<char>(types.size());
    std::size_t at = 64;
    for (unsigned type : types) {
        head[at] = static_cast<char>(type);
        at += 56;
    }
    return head;
}

// The same as a 32-bit big-endian header (program headers of 32 bytes at 52).
std::string elf32_big(std::initializer_list<unsigned> types) {
    std::string head(52 + 32 * types.size(), '\0');
    head.replace(0, 4, "\x7f" "ELF");
    head[4] = 1;
    head[5] = 2;
    head[31] = 52;  // e_phoff
    head[43] = 32;  // e_phentsize
    head[45] = static_cast<char>(types.size());
    std::size_t at = 52;
    for (unsigned type : types) {
        head[at + 3] = static_cast<char>(type);
        at += 32;
    }
    return head;
}

}  // namespace

TEST(ElfHeader, AProgramWithAnInterpreterIsDynamicAndOneWithoutIsStatic) {
    EXPECT_EQ(classify_elf(elf64({6, 3, 1})), ElfLinking::dynamic);  // PT_PHDR, PT_INTERP, PT_LOAD
    EXPECT_EQ(classify_elf(elf64({1, 1, 4})), ElfLinking::static_);
    EXPECT_EQ(classify_elf(elf32_big({6, 3})), ElfLinking::dynamic);
    EXPECT_EQ(classify_elf(elf32_big({1})), ElfLinking::static_);
}

TEST(ElfHeader, ScriptsAndTruncatedHeadersAreNotElf) {
    EXPECT_EQ(classify_elf("#!/bin/sh\nexec server\n"), ElfLinking::not_elf);
    EXPECT_EQ(classify_elf(""), ElfLinking::not_elf);
    const std::string whole = elf64({1, 3});
    EXPECT_EQ(classify_elf(whole.substr(0, 40)), ElfLinking::not_elf);
    EXPECT_EQ(classify_elf(whole.substr(0, 64 + 56 + 2)), ElfLinking::not_elf);  // the second entry is cut
}
