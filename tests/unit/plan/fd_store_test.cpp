// --fd-store in the plan: when the listeners go to systemd's fd store, which sockets systemd passes back a
// --listen takes after a restart, and the messages that store and forget them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plan/fd_store.hpp"
#include "plan/make_plan.hpp"

using namespace preforkctl;
using namespace preforkctl::plan;
using ::testing::HasSubstr;

namespace {

InheritedSocket passed(int fd, std::string name, std::string host, int port) {
    InheritedSocket socket;
    socket.fd = fd;
    socket.name = std::move(name);
    socket.host = std::move(host);
    socket.port = port;
    socket.address = socket.host.find(':') != std::string::npos ? "[" + socket.host + "]:" + std::to_string(port)
                                                                  : socket.host + ":" + std::to_string(port);
    return socket;
}

InheritedSocket passed_unix(int fd, std::string name, const std::string& path) {
    InheritedSocket socket;
    socket.fd = fd;
    socket.name = std::move(name);
    socket.address = "unix:" + path;
    return socket;
}

HostFacts under_systemd(std::vector<InheritedSocket> inherited = {}, std::vector<std::string> extra_env = {}) {
    HostFacts facts;
    facts.cpus.affinity = {0, 1};
    facts.command = {"/usr/bin/server", 0};
    facts.environment = {"PATH=/usr/bin", "NOTIFY_SOCKET=/run/systemd/notify"};
    facts.environment.insert(facts.environment.end(), extra_env.begin(), extra_env.end());
    facts.inherited = std::move(inherited);
    return facts;
}

config::Settings settings(std::vector<std::string> listen, std::optional<bool> fd_store = true,
                          const std::string& mode = "shared") {
    config::Settings s;
    s.command = config::Setting<std::vector<std::string>>{{"server"}, "command line"};
    s.workers = config::Setting<std::string>{"2", "--workers"};
    s.socket_mode = config::Setting<std::string>{mode, "--socket-mode"};
    if (fd_store) s.fd_store = config::Setting<bool>{*fd_store, "--fd-store"};
    for (const std::string& value : listen) s.listen.push_back({value, "--listen"});
    return s;
}

ListenSpec listen_spec(const std::string& text) {
    auto spec = parse_listen(text);
    EXPECT_TRUE(spec) << text;
    return *spec;
}

}  // namespace

TEST(PlanFdStore, TheFlagUnderSystemdStoresTheSharedListeners) {
    auto plan = make_plan(settings({"127.0.0.1:8080,name=web"}), under_systemd());
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_TRUE(plan->fd_store);
    EXPECT_THAT(describe_plan(*plan), HasSubstr("fd store:     the listeners go to systemd's fd store"));
    EXPECT_EQ(fd_store_message(plan->listeners.front()), "FDSTORE=1\nFDNAME=web");
    EXPECT_EQ(fd_store_remove_message("web"), "FDSTOREREMOVE=1\nFDNAME=web");
}

TEST(PlanFdStore, SystemdsFdstoreVariableTurnsItOnAndTheFlagOff) {
    auto on = make_plan(settings({":8080"}, std::nullopt), under_systemd({}, {"FDSTORE=16"}));
    ASSERT_TRUE(on) << on.error().message;
    EXPECT_TRUE(on->fd_store);
    auto off = make_plan(settings({":8080"}, false), under_systemd({}, {"FDSTORE=16"}));
    ASSERT_TRUE(off) << off.error().message;
    EXPECT_FALSE(off->fd_store);
    auto none = make_plan(settings({":8080"}, std::nullopt), under_systemd());
    ASSERT_TRUE(none) << none.error().message;
    EXPECT_FALSE(none->fd_store);
}

TEST(PlanFdStore, WithoutSystemdTheFlagIsAWarningAndNothingIsStored) {
    HostFacts facts = under_systemd();
    facts.environment = {"PATH=/usr/bin"};
    auto plan = make_plan(settings({":8080"}), facts);
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_FALSE(plan->fd_store);
    ASSERT_EQ(plan->warnings.size(), 1u);
    EXPECT_THAT(plan->warnings.front(), HasSubstr("--fd-store"));
    EXPECT_THAT(plan->warnings.front(), HasSubstr("NOTIFY_SOCKET is not set"));
}

TEST(PlanFdStore, ReuseportAndChildModesAreRefusedWhenAskedFor) {
    for (const std::string mode : {"reuseport", "child"}) {
        auto plan = make_plan(settings({"127.0.0.1:8080"}, true, mode), under_systemd());
        ASSERT_FALSE(plan) << mode;
        EXPECT_THAT(plan.error().message, HasSubstr("--fd-store: keeps shared sockets only")) << mode;
    }
    auto quiet = make_plan(settings({"127.0.0.1:8080"}, std::nullopt, "reuseport"), under_systemd({}, {"FDSTORE=4"}));
    ASSERT_TRUE(quiet) << quiet.error().message;
    EXPECT_FALSE(quiet->fd_store);
}

TEST(PlanFdStore, TheWorkersNeverSeeSystemdsFdstoreVariable) {
    auto plan = make_plan(settings({":8080"}), under_systemd({}, {"FDSTORE=16"}));
    ASSERT_TRUE(plan) << plan.error().message;
    for (const std::string& entry : plan->environment) EXPECT_FALSE(entry.starts_with("FDSTORE=")) << entry;
}

TEST(PlanFdStore, AStoredSocketMatchesByNameAndAddress) {
    EXPECT_TRUE(stored_socket_matches(listen_spec("127.0.0.1:8080,name=web"), passed(3, "web", "127.0.0.1", 8080)));
    EXPECT_FALSE(stored_socket_matches(listen_spec("127.0.0.1:8080,name=api"), passed(3, "web", "127.0.0.1", 8080)));
    EXPECT_FALSE(stored_socket_matches(listen_spec("127.0.0.1:8081,name=web"), passed(3, "web", "127.0.0.1", 8080)));
    EXPECT_FALSE(stored_socket_matches(listen_spec("127.0.0.2:8080,name=web"), passed(3, "web", "127.0.0.1", 8080)));
    // :PORT is 0.0.0.0; an IPv6 host matches in any spelling, never an IPv4 one.
    EXPECT_TRUE(stored_socket_matches(listen_spec(":8080"), passed(3, "unknown", "0.0.0.0", 8080)));
    EXPECT_TRUE(stored_socket_matches(listen_spec("[0:0::1]:8080"), passed(3, "unknown", "::1", 8080)));
    EXPECT_FALSE(stored_socket_matches(listen_spec("[::]:8080"), passed(3, "unknown", "0.0.0.0", 8080)));
    // Port 0 takes the port the kernel gave before the restart.
    EXPECT_TRUE(stored_socket_matches(listen_spec("127.0.0.1:0"), passed(3, "unknown", "127.0.0.1", 41234)));
    EXPECT_TRUE(stored_socket_matches(listen_spec("unix:/run/a.sock"), passed_unix(3, "unknown", "/run/a.sock")));
    EXPECT_FALSE(stored_socket_matches(listen_spec("unix:/run/b.sock"), passed_unix(3, "unknown", "/run/a.sock")));
    EXPECT_FALSE(stored_socket_matches(listen_spec("127.0.0.1:8080"), passed_unix(3, "unknown", "/run/a.sock")));
}

TEST(PlanFdStore, AfterARestartEachListenerTakesItsSocketBackAndANewOneIsBound) {
    auto plan = make_plan(settings({"127.0.0.1:0,name=web", "unix:/run/a.sock", "127.0.0.1:9090,name=admin"}),
                          under_systemd({passed_unix(3, "unknown", "/run/a.sock"), passed(4, "web", "127.0.0.1", 41234)}));
    ASSERT_TRUE(plan) << plan.error().message;
    ASSERT_EQ(plan->listeners.size(), 3u);
    EXPECT_EQ(plan->listeners[0].kind, ListenSpec::Kind::inherited);
    EXPECT_EQ(plan->listeners[0].inherited_fd, 4);
    EXPECT_EQ(plan->listeners[0].port, 41234);
    EXPECT_EQ(plan->listeners[0].name, "web");
    EXPECT_EQ(plan->listeners[1].kind, ListenSpec::Kind::inherited);
    EXPECT_EQ(plan->listeners[1].inherited_fd, 3);
    EXPECT_EQ(plan->listeners[2].kind, ListenSpec::Kind::tcp) << "a listener the store had nothing for is bound";
    EXPECT_TRUE(plan->stored_adopted);
    EXPECT_FALSE(plan->adopted) << "not a socket unit's: the listeners stay preforkctl's";
    EXPECT_TRUE(plan->fd_store);
    EXPECT_TRUE(plan->stale_stored.empty());
}

TEST(PlanFdStore, AStoredSocketNoListenerAsksForIsForgottenWithTheStoreAndSocketsBesideListenAreAnErrorWithout) {
    const std::vector<InheritedSocket> sockets{passed(3, "web", "127.0.0.1", 8080)};
    auto changed = make_plan(settings({"127.0.0.1:9090,name=web"}), under_systemd(sockets));
    ASSERT_TRUE(changed) << changed.error().message;
    ASSERT_EQ(changed->stale_stored.size(), 1u);
    EXPECT_EQ(changed->stale_stored.front().fd, 3);
    EXPECT_EQ(changed->listeners.front().kind, ListenSpec::Kind::tcp);

    auto without = make_plan(settings({"127.0.0.1:9090,name=web"}, std::nullopt), under_systemd(sockets));
    ASSERT_FALSE(without);
    EXPECT_THAT(without.error().message,
                HasSubstr("--listen: preforkctl was given 1 socket(s) by systemd (LISTEN_FDS)"));
}

TEST(PlanFdStore, ASocketUnitsSocketsAreAdoptedAsBeforeAndNotStored) {
    auto plan = make_plan(settings({}), under_systemd({passed(3, "web", "0.0.0.0", 8080)}));
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_TRUE(plan->adopted);
    EXPECT_FALSE(plan->fd_store);
}
