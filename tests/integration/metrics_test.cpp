// --metrics against the real Prometheus tools (label: integration): promtool accepts what preforkctl serves,
// and a real Prometheus scrapes it.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <utility>

#include "../e2e/harness.hpp"

using namespace e2e;

namespace {

bool have(const std::string& program) {
    return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

// The exit status and the output (stdout and stderr) of a shell command.
std::pair<int, std::string> run_shell(const std::string& command) {
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return {-1, ""};
    std::string output;
    char buffer[4096];
    while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::vector<std::string> preforkctl_with_metrics() {
    return preforkctl({"--metrics", "127.0.0.1:0", "-n", "2", "-l", "127.0.0.1:0", "--", "/bin/sleep", "1000"});
}

}  // namespace

TEST(Metrics, PromtoolAcceptsWhatPreforkctlServes) {
    if (!have("promtool")) GTEST_SKIP() << "promtool is not installed (Debian package prometheus)";
    Process run(preforkctl_with_metrics());
    int port = 0;
    ASSERT_TRUE(wait_until([&] { return (port = metrics_port(run.err())) != 0 || !is_alive(run.pid()); }, 20s));
    ASSERT_NE(port, 0) << run.err();
    std::string text;
    // Workers are "starting" for a moment after preforkctl logs its address.
    EXPECT_TRUE(wait_until([&] {
        text = http_get(port, "/metrics");
        return text.find("\npreforkctl_workers{state=\"ready\"} 2\n") != std::string::npos;
    }, 20s)) << text << run.err();

    TempDir dir;
    const std::string path = dir.path() + "/metrics.txt";
    std::ofstream(path) << text;
    const auto [status, output] = run_shell("promtool check metrics < " + path);
    EXPECT_EQ(status, 0) << output << "\n" << text;

    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(30s), 0) << run.err();
}

TEST(Metrics, PrometheusScrapesPreforkctl) {
    if (!have("prometheus")) GTEST_SKIP() << "prometheus is not installed";
    Process run(preforkctl_with_metrics());
    int port = 0;
    ASSERT_TRUE(wait_until([&] { return (port = metrics_port(run.err())) != 0 || !is_alive(run.pid()); }, 20s));
    ASSERT_NE(port, 0) << run.err();

    TempDir dir;
    const std::string config = dir.path() + "/prometheus.yml";
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  scrape_timeout: 1s\n"
                             "scrape_configs:\n"
                             "  - job_name: preforkctl\n"
                             "    static_configs:\n"
                             "      - targets: ['127.0.0.1:" << port << "']\n";
    const int prometheus_port = free_tcp_port();
    ASSERT_NE(prometheus_port, 0);
    Process prometheus({"prometheus", "--config.file=" + config, "--storage.tsdb.path=" + dir.path() + "/data",
                        "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)});

    static const std::regex two(R"re("value":\[[0-9.e+]+,"2"\])re");
    std::string answer;
    EXPECT_TRUE(wait_until([&] {
        answer = http_get(prometheus_port, "/api/v1/query?query=preforkctl_workers_desired");
        return std::regex_search(answer, two);
    }, 60s)) << "last answer: " << answer << "\nprometheus:\n" << prometheus.err() << "\npreforkctl:\n" << run.err();

    prometheus.signal(SIGTERM);
    EXPECT_EQ(prometheus.wait(30s), 0) << prometheus.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(30s), 0) << run.err();
}
