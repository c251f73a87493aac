// A reload (SIGHUP, `ctl reload`) re-reads the -c file first (SPEC §14): a changed worker count is scaled
// to, a changed command or environment reaches every worker through the rolling restart, an invalid file
// changes nothing, and what cannot change live is named in a warning.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

namespace {

void write(const std::string& path, const std::string& content) {
    std::ofstream(path, std::ios::trunc) << content;
}

std::string config(int workers, const std::string& greeting, const std::string& listen = "127.0.0.1:0") {
    return "name = \"reloaded\"\nworkers = " + std::to_string(workers) + "\nlisten = \"" + listen +
           "\"\nbackoff = \"50ms..1s\"\ncommand = [\"sleep\", \"1000\"]\n[env]\nGREETING = \"" + greeting + "\"\n";
}

// True when `run` has exactly `count` live workers and every one was started with GREETING=`greeting`.
bool workers_greet(const Process& run, std::size_t count, const std::string& greeting) {
    const std::vector<pid_t> workers = live_children(run.pid());
    return workers.size() == count && std::all_of(workers.begin(), workers.end(), [&](pid_t pid) {
               return environment_of(pid, "GREETING") == greeting;
           });
}

// /proc/PID/cmdline with spaces between the arguments.
std::string command_line_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!text.empty() && text.back() == '\0') text.pop_back();
    std::replace(text.begin(), text.end(), '\0', ' ');
    return text;
}

std::string working_directory_of(pid_t pid) {
    char target[4096] = {};
    const std::string link = "/proc/" + std::to_string(pid) + "/cwd";
    const ssize_t length = ::readlink(link.c_str(), target, sizeof target - 1);
    return length > 0 ? std::string(target, static_cast<std::size_t>(length)) : std::string();
}

// A config file in a directory of its own, and a preforkctl started with it.
class Reload : public ::testing::Test {
protected:
    // Starts preforkctl -c with `content` and waits for its `count` workers greeting `greeting`.
    std::unique_ptr<Process> start(const std::string& content, std::size_t count, const std::string& greeting) {
        write(path, content);
        auto run = std::make_unique<Process>(preforkctl({"-c", path}));
        EXPECT_TRUE(wait_until([&] { return workers_greet(*run, count, greeting); })) << run->err();
        return run;
    }

    TempDir dir;
    const std::string path = dir.path() + "/preforkctl.toml";
};

}  // namespace

TEST_F(Reload, AReloadTakesOverTheFilesWorkerCountAndEnvironment) {
    const auto started = start(config(2, "one"), 2, "one");
    Process& run = *started;
    const std::vector<pid_t> before = live_children(run.pid());

    write(path, config(3, "two"));
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return workers_greet(run, 3, "two"); })) << run.err();
    for (pid_t old : before) EXPECT_FALSE(is_alive(old)) << "a worker of the old settings is still there";
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.err(), "settings re-read; new --workers, --env/--env-file").empty(); }))
        << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST_F(Reload, AnInvalidFileIsRefusedWithItsPositionAndNothingChanges) {
    const auto started = start(config(2, "one"), 2, "one");
    Process& run = *started;
    const std::vector<pid_t> before = live_children(run.pid());

    write(path, "workers = 3\nrestart = \"sometimes\"\ncommand = [\"sleep\", \"1000\"]\n");
    const CtlResult reload = ctl({"--name", "reloaded", "reload"});
    EXPECT_NE(reload.status, 0) << reload.out;
    EXPECT_THAT(reload.out + reload.err, HasSubstr("nothing changed"));
    EXPECT_THAT(reload.out + reload.err, HasSubstr(path + ":2:"));
    // Still the same two workers: no rolling restart, no scaling.
    const CtlResult status = ctl({"--name", "reloaded", "status", "--json"});
    EXPECT_THAT(status.out, HasSubstr("\"rolling_restarts\": 0,"));
    EXPECT_THAT(status.out, HasSubstr("\"workers\": 2\n"));
    const std::vector<pid_t> after = live_children(run.pid());
    EXPECT_EQ(std::set<pid_t>(before.begin(), before.end()), std::set<pid_t>(after.begin(), after.end()));
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST_F(Reload, ASettingThatCannotChangeLiveIsNamedAndKeepsItsValue) {
    const auto started = start(config(1, "one"), 1, "one");
    Process& run = *started;
    write(path, "log-format = \"json\"\n" + config(1, "two"));
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return workers_greet(run, 1, "two"); })) << run.err();
    EXPECT_TRUE(wait_until([&] {
        return !lines_with(run.err(), "the output settings (--log-format, --name, ...) changed in the config file; "
                                      "it keeps its old value").empty();
    })) << run.err();
    EXPECT_TRUE(lines_with(run.err(), "{\"").empty()) << "the output became JSON: " << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST_F(Reload, AListenerTheFileAddsIsBoundForTheNewWorkersAndOneItDropsIsClosedAfterTheRollout) {
    const auto started = start(config(1, "one"), 1, "one");
    Process& run = *started;
    int port = 0;
    ASSERT_TRUE(wait_until([&] { return (port = listening_port(run.err())) != 0; })) << run.err();
    const std::string socket_path = dir.path() + "/added.sock";
    write(path, config(1, "two", "unix:" + socket_path));
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return workers_greet(run, 1, "two"); })) << run.err();
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "closed 127.0.0.1:" + std::to_string(port)).empty(); }))
        << run.err();
    EXPECT_THAT(run.err(), HasSubstr("listening on unix:" + socket_path + " (fd 3 in workers"));
    const pid_t worker = live_children(run.pid()).front();
    EXPECT_EQ(environment_of(worker, "LISTEN_FDS"), "1") << "the new worker gets the new set only";
    // The TCP address is gone with its last holder; the unix one takes connections.
    EXPECT_TRUE(wait_until([&] { return http_request(port, "/", 1s).failure.find("connect") == 0; }));
    const int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
    EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
    ::close(client);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST_F(Reload, ANewCommandAndDirectoryReachEveryWorkerAndAFallingCountIsScaledDown) {
    const auto started = start(config(2, "one"), 2, "one");
    Process& run = *started;
    const std::string elsewhere = dir.path() + "/elsewhere";
    ASSERT_EQ(::mkdir(elsewhere.c_str(), 0755), 0);
    std::string changed = config(1, "one");
    changed.replace(changed.find("\"1000\""), 6, "\"2000\"");
    write(path, "chdir = \"" + elsewhere + "\"\n" + changed);
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] {
        const std::vector<pid_t> workers = live_children(run.pid());
        return workers.size() == 1 && command_line_of(workers.front()) == "sleep 2000" &&
               working_directory_of(workers.front()) == elsewhere;
    })) << run.err();
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.err(), "new --workers, the command, --chdir").empty(); }))
        << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}
