// Real third-party servers behind preforkctl (label: integration), each started from its example config in
// examples/servers/ exactly as a user would (`preforkctl -c examples/servers/X.toml` from the top of the
// source tree). The command line overrides only what a test must: the worker count and the listen address
// (a test port; -l replaces the file's listen key), and for nginx the directory of its nginx.conf, whose
// listen line names that port too. Each must serve from at least two distinct worker pids, keep serving
// while one worker is SIGKILLed, get the slot back, and stop cleanly on SIGTERM.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "../e2e/harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string kExamples = EXAMPLES_DIR;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// preforkctl -c examples/servers/NAME.toml, started in the top of the source tree (as the examples say: their
// chdir is relative to it), with `workers` workers on 127.0.0.1:PORT and `extra` options.
Process run_example(const std::string& name, int port, const std::vector<std::string>& extra = {},
                    const std::string& workers = "2") {
    std::vector<std::string> args = {"-c", "examples/servers/" + name + ".toml", "-n", workers, "-l",
                                     "127.0.0.1:" + std::to_string(port)};
    args.insert(args.end(), extra.begin(), extra.end());
    Options options;
    options.prefix = {"env", "-C", std::filesystem::path(kExamples).parent_path().string()};
    return Process(preforkctl(args), options);
}

// The example's nginx.conf in `dir`, with its listen line turned into `listen`: nginx adopts the inherited
// socket only for a listen line with its address, so a test port must be in the file too.
void copy_nginx_config(const TempDir& dir, const std::string& listen) {
    std::string config = read_file(kExamples + "/servers/nginx.conf");
    const std::string line = "listen 127.0.0.1:8080;";
    const auto at = config.find(line);
    ASSERT_NE(at, std::string::npos) << "the example's listen line changed: change it here too";
    config.replace(at, line.size(), "listen " + listen + ";");
    std::ofstream(dir.path() + "/nginx.conf") << config;
}

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

}  // namespace

TEST(Servers, GunicornExamplePicksUpTheSharedSocketByItself) {
    if (!have("gunicorn")) GTEST_SKIP() << "gunicorn is not installed";
    Process run = run_example("gunicorn", 18971);
    // The example has ready = "notify": both copies count as ready only because gunicorn sent READY=1 (a
    // worker that never sends it stays "starting" for a minute and is then killed).
    ASSERT_TRUE(wait_until([&] {
        return ctl({"--name", "gunicorn", "status"}).out.find("(2 ready)") != std::string::npos;
    }, 20s)) << ctl({"--name", "gunicorn", "status"}).out << run.err();
    expect_serves_and_survives_a_kill(run, 18971);
}

TEST(Servers, UvicornExampleServesFd3) {
    if (!have("uvicorn")) GTEST_SKIP() << "uvicorn is not installed";
    Process run = run_example("uvicorn", 18972);
    expect_serves_and_survives_a_kill(run, 18972);
}

TEST(Servers, NginxExampleUsesTheInheritedSocketThroughItsNginxVariable) {
    if (!have("nginx")) GTEST_SKIP() << "nginx is not installed (or not on PATH)";
    TempDir dir;
    copy_nginx_config(dir, "127.0.0.1:18973");
    Process run = run_example("nginx", 18973, {"--chdir", dir.path()});
    expect_serves_and_survives_a_kill(run, 18973);
    EXPECT_THAT(run.err(), HasSubstr("using inherited sockets from \"3;\""));
}

// Not an example: each nginx binds its own SO_REUSEPORT socket (listen ... reuseport) in child mode.
TEST(Servers, NginxBindsItsOwnReuseportSocketsInChildMode) {
    if (!have("nginx")) GTEST_SKIP() << "nginx is not installed (or not on PATH)";
    TempDir dir;
    copy_nginx_config(dir, "127.0.0.1:18974 reuseport");
    Process run(preforkctl({"-n", "2", "--backoff", "50ms..1s", "--socket-mode", "child", "-l", "127.0.0.1:18974",
                            "--stop-signal", "QUIT", "--chdir", dir.path(), "--", "nginx", "-p", ".", "-c",
                            "nginx.conf", "-g", "pid nginx.{slot}.pid;"}));
    expect_serves_and_survives_a_kill(run, 18974, 5);
}

TEST(Servers, NodeExampleListensOnFd3) {
    if (!have("node")) GTEST_SKIP() << "node is not installed";
    Process run = run_example("node", 18975);
    expect_serves_and_survives_a_kill(run, 18975);
}

TEST(Servers, PumaExampleServesTheActivatedSocket) {
    if (!have("puma")) GTEST_SKIP() << "puma is not installed";
    Process run = run_example("puma", 18976);
    // The example has ready = "notify": both copies count as ready only because puma's sd_notify gem reached
    // their NOTIFY_SOCKET, which it takes for a file name.
    ASSERT_TRUE(wait_until([&] {
        return ctl({"--name", "puma", "status"}).out.find("(2 ready)") != std::string::npos;
    }, 20s)) << ctl({"--name", "puma", "status"}).out << run.err();
    expect_serves_and_survives_a_kill(run, 18976);
    EXPECT_THAT(run.out(), HasSubstr("Activated tcp://127.0.0.1:18976"));  // puma logs to stdout
}

// What the example relies on: without LISTEN_FDS (here only einhorn's variables), puma ignores fd 3, binds
// its default address instead, and preforkctl's address is never answered (connections wait in its queue).
TEST(Servers, PumaExampleServesNothingWithoutListenFds) {
    if (!have("puma")) GTEST_SKIP() << "puma is not installed";
    Process run = run_example("puma", 18977, {"--fd-env", "einhorn"}, "1");
    ASSERT_TRUE(wait_until([&] { return run.out().find("Use Ctrl-C to stop") != std::string::npos; }, 20s))
        << run.out() << run.err();
    const HttpReply reply = http_request(18977, "/", 2s);
    EXPECT_EQ(reply.status, 0) << reply.body;
    EXPECT_EQ(reply.failure, "timed out");
    EXPECT_THAT(run.out(), Not(HasSubstr("Activated")));
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(30s), 0) << run.err();
}
