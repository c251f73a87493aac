// Real third-party servers behind preforkctl (label: integration). Each must serve from at least two
// distinct worker pids, keep serving while one worker is SIGKILLed, and get the slot back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "../e2e/harness.hpp"

using namespace e2e;

namespace {

const std::string kApps = INTEGRATION_APPS;

bool have(const std::string& program) {
    return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

std::string pid_of(const std::string& body) {
    static const std::regex pattern(R"(pid=(\d+))");
    std::smatch match;
    return std::regex_search(body, match, pattern) ? match[1].str() : "";
}

// The workers are preforkctl's children that lead their own process group (orphans re-parented to
// preforkctl do not).
std::vector<pid_t> workers_of(pid_t preforkctl) {
    std::vector<pid_t> children;
    for (pid_t pid : descendants(preforkctl)) {
        if (parent_of(pid) == preforkctl && group_of(pid) == pid) children.push_back(pid);
    }
    return children;
}

// `lost_allowed`: connections that may fail while the killed worker goes. Zero whenever preforkctl holds the
// socket; in child mode the dying worker's own SO_REUSEPORT socket takes its queued connections with it (the
// documented trade-off of that mode, unless net.ipv4.tcp_migrate_req is 1).
void expect_serves_and_survives_a_kill(Process& run, int port, int lost_allowed = 0) {
    const std::size_t workers = 2;
    ASSERT_TRUE(wait_until([&] { return workers_of(run.pid()).size() == workers; }, 20s)) << run.err();
    std::set<std::string> pids;
    ASSERT_TRUE(wait_until([&] {
        const std::string pid = pid_of(http_get(port));
        if (!pid.empty()) pids.insert(pid);
        return pids.size() >= 2;
    }, 30s)) << "served by " << pids.size() << " pid(s)\n" << run.err();

    const auto before = workers_of(run.pid());
    const pid_t victim = before.front();
    ::kill(victim, SIGKILL);
    // Requests keep succeeding while the slot restarts: the other worker holds the same address.
    int failures = 0;
    for (int i = 0; i < 50; ++i) {
        if (pid_of(http_get(port)).empty()) ++failures;
    }
    EXPECT_LE(failures, lost_allowed);
    EXPECT_TRUE(wait_until([&] {
        const auto now = workers_of(run.pid());
        return now.size() == workers && std::find(now.begin(), now.end(), victim) == now.end();
    }, 20s)) << "the slot did not come back\n" << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(30s), 0) << run.err();
}

std::string nginx_config(const TempDir& dir, const std::string& listen) {
    std::ifstream in(kApps + "/nginx.conf.in");
    std::stringstream text;
    text << in.rdbuf();
    std::string config = std::regex_replace(text.str(), std::regex("@LISTEN@"), listen);
    const std::string path = dir.path() + "/nginx.conf";
    std::ofstream(path) << config;
    return path;
}

}  // namespace

TEST(Servers, GunicornPicksUpTheSharedSocketByItself) {
    if (!have("gunicorn")) GTEST_SKIP() << "gunicorn is not installed";
    Process run(preforkctl({"-n", "2", "--backoff", "50ms..1s", "-l", "127.0.0.1:18971", "--chdir", kApps, "--",
                        "gunicorn", "-w", "1", "pidapp:app"}));
    expect_serves_and_survives_a_kill(run, 18971);
}

TEST(Servers, UvicornServesFd3) {
    if (!have("uvicorn")) GTEST_SKIP() << "uvicorn is not installed";
    Process run(preforkctl({"-n", "2", "--backoff", "50ms..1s", "-l", "127.0.0.1:18972", "--chdir", kApps, "--",
                        "uvicorn", "--fd", "3", "pidapp:asgi"}));
    expect_serves_and_survives_a_kill(run, 18972);
}

TEST(Servers, NginxUsesTheInheritedSocketThroughItsNginxVariable) {
    if (!have("nginx") && !have("/usr/sbin/nginx")) GTEST_SKIP() << "nginx is not installed";
    TempDir dir;
    const std::string config = nginx_config(dir, "127.0.0.1:18973");
    Process run(preforkctl({"-n", "2", "--backoff", "50ms..1s", "-l", "127.0.0.1:18973", "-e", "NGINX=3;", "--stop-signal", "QUIT", "--",
                        "/usr/sbin/nginx", "-p", dir.path(), "-c", config, "-g",
                        "pid " + dir.path() + "/nginx.{slot}.pid;"}));
    expect_serves_and_survives_a_kill(run, 18973);
}

TEST(Servers, NginxBindsItsOwnReuseportSocketsInChildMode) {
    if (!have("nginx") && !have("/usr/sbin/nginx")) GTEST_SKIP() << "nginx is not installed";
    TempDir dir;
    const std::string config = nginx_config(dir, "127.0.0.1:18974 reuseport");
    Process run(preforkctl({"-n", "2", "--backoff", "50ms..1s", "--socket-mode", "child", "-l", "127.0.0.1:18974",
                        "--stop-signal", "QUIT", "--", "/usr/sbin/nginx", "-p", dir.path(), "-c", config, "-g",
                        "pid " + dir.path() + "/nginx.{slot}.pid;"}));
    expect_serves_and_survives_a_kill(run, 18974, 5);
}

TEST(Servers, NodeListensOnFd3) {
    if (!have("node")) GTEST_SKIP() << "node is not installed";
    Process run(preforkctl({"-n", "2", "--backoff", "50ms..1s", "-l", "127.0.0.1:18975", "--", "node",
                        kApps + "/pidserver.js"}));
    expect_serves_and_survives_a_kill(run, 18975);
}
