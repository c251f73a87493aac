#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "metrics/exposition.hpp"

using namespace preforkctl;
using namespace preforkctl::metrics;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

control::SlotStatus slot(int number, const std::string& state, int pid) {
    control::SlotStatus status;
    status.slot = number;
    status.state = state;
    status.pid = pid;
    status.ready = state == "ready";
    status.uptime_seconds = pid > 0 ? 12.5 : 0;
    status.generation = 1;
    return status;
}

// A snapshot with something in every family.
control::Snapshot busy_snapshot() {
    control::Snapshot snapshot;
    snapshot.name = "web";
    snapshot.version = "0.1.0";
    snapshot.pid = 100;
    snapshot.uptime_seconds = 3600.25;
    snapshot.workers = 3;
    snapshot.generation = 2;
    auto ready = slot(0, "ready", 101);
    ready.restarts_total = 4;
    ready.restarts_by_reason = {{"crash", 3}, {"failure", 1}};
    ready.usage = control::TreeUsage{52428800, 1.75, 3};
    ready.draining = {90, 91};
    auto backoff = slot(1, "backoff", 0);
    backoff.restarts_total = 7;
    backoff.restarts_by_reason = {{"spawn_failure", 7}};
    auto starting = slot(2, "starting", 103);
    starting.usage = control::TreeUsage{1024, 0, 1};
    snapshot.slots = {ready, backoff, starting};
    control::ListenerStatus shared{"http", "0.0.0.0:8080", "shared", -1, 5u, 4096u};
    control::ListenerStatus own{"api", "127.0.0.1:9000", "reuseport", 1, 0u, 128u};
    control::ListenerStatus unix_socket{"admin", "unix:/run/app.sock", "shared", -1, std::nullopt, std::nullopt};
    snapshot.listeners = {shared, own, unix_socket};
    snapshot.out = {10, 500, 0};
    snapshot.err = {3, 120, 2};
    snapshot.rolling_restarts = 6;
    snapshot.scale_ups = 1;
    snapshot.scale_downs = 2;
    return snapshot;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Sample lines keyed by everything before the value ("name{labels}"), valued by the value's text.
std::map<std::string, std::string> samples_of(const std::string& text) {
    std::map<std::string, std::string> samples;
    for (const auto& line : lines_of(text)) {
        if (line.empty() || line.front() == '#') continue;
        const std::size_t space = line.rfind(' ');
        samples[line.substr(0, space)] = line.substr(space + 1);
    }
    return samples;
}

std::string family_of(const std::string& sample_line) {
    return sample_line.substr(0, sample_line.find_first_of("{ "));
}

}  // namespace

TEST(Exposition, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
    const std::string text = render_metrics(busy_snapshot());
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    std::set<std::string> helped;
    std::set<std::string> typed;
    std::set<std::string> finished;  // families whose samples are over: a family's samples are contiguous
    std::string current;
    for (const auto& line : lines_of(text)) {
        if (line.starts_with("# HELP ")) {
            const std::string name = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_TRUE(helped.insert(name).second) << "second HELP for " << name;
            EXPECT_TRUE(name.starts_with("preforkctl_")) << name;
            if (!current.empty()) finished.insert(current);
            current = name;
            EXPECT_FALSE(finished.contains(name)) << name;
        } else if (line.starts_with("# TYPE ")) {
            const std::string name = line.substr(7, line.find(' ', 7) - 7);
            const std::string type = line.substr(line.rfind(' ') + 1);
            EXPECT_EQ(name, current) << "TYPE without HELP just before it: " << line;
            EXPECT_TRUE(typed.insert(name).second) << "second TYPE for " << name;
            EXPECT_TRUE(type == "gauge" || type == "counter") << line;
            EXPECT_EQ(type == "counter", name.ends_with("_total")) << line;
        } else {
            const std::string name = family_of(line);
            EXPECT_EQ(name, current) << "sample outside its family: " << line;
            EXPECT_TRUE(helped.contains(name) && typed.contains(name)) << line;
        }
    }
    for (const char* family :
         {"preforkctl_build_info", "preforkctl_uptime_seconds", "preforkctl_workers_desired", "preforkctl_generation",
          "preforkctl_workers", "preforkctl_draining_workers", "preforkctl_worker_restarts_total",
          "preforkctl_worker_up", "preforkctl_worker_ready", "preforkctl_worker_uptime_seconds",
          "preforkctl_worker_resident_memory_bytes", "preforkctl_worker_cpu_seconds_total",
          "preforkctl_worker_processes", "preforkctl_worker_generation", "preforkctl_listener_queue_length",
          "preforkctl_listener_backlog", "preforkctl_output_lines_total", "preforkctl_output_bytes_total",
          "preforkctl_output_dropped_lines_total", "preforkctl_rolling_restarts_total",
          "preforkctl_scale_events_total", "preforkctl_recycles_total", "preforkctl_watchdog_timeouts_total"}) {
        EXPECT_TRUE(typed.contains(family)) << family;
    }
}

TEST(Exposition, ReportsElasticScalingRecyclesAndWatchdogByReason) {
    control::Snapshot snapshot = busy_snapshot();
    snapshot.scale_ups = 3;
    snapshot.scale_up_reasons = {{"load", 2}, {"on_demand", 1}};
    snapshot.scale_downs = 1;
    snapshot.scale_down_reasons = {{"idle", 1}};
    snapshot.elastic = control::ElasticStatus{0, 8};
    snapshot.recycles = {{"lifetime", 4}};
    snapshot.watchdog_timeouts = 2;
    const auto samples = samples_of(render_metrics(snapshot));
    EXPECT_EQ(samples.at("preforkctl_scale_events_total{direction=\"up\",reason=\"load\"}"), "2");
    EXPECT_EQ(samples.at("preforkctl_scale_events_total{direction=\"up\",reason=\"on_demand\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_scale_events_total{direction=\"up\",reason=\"request\"}"), "0");
    EXPECT_FALSE(samples.contains("preforkctl_scale_events_total{direction=\"up\",reason=\"other\"}"));
    EXPECT_EQ(samples.at("preforkctl_scale_events_total{direction=\"down\",reason=\"idle\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_recycles_total{reason=\"lifetime\"}"), "4");
    EXPECT_EQ(samples.at("preforkctl_recycles_total{reason=\"rss\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_watchdog_timeouts_total"), "2");
    EXPECT_EQ(samples.at("preforkctl_workers_min"), "0");
    EXPECT_EQ(samples.at("preforkctl_workers_max"), "8");
}

TEST(Exposition, ReportsProcessWideValues) {
    const auto samples = samples_of(render_metrics(busy_snapshot()));
    EXPECT_EQ(samples.at("preforkctl_build_info{version=\"0.1.0\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_uptime_seconds"), "3600.25");
    EXPECT_EQ(samples.at("preforkctl_workers_desired"), "3");
    EXPECT_EQ(samples.at("preforkctl_generation"), "2");
    EXPECT_EQ(samples.at("preforkctl_rolling_restarts_total"), "6");
    // busy_snapshot() gives totals without reasons: they are filed under "other", so that the sum holds.
    EXPECT_EQ(samples.at("preforkctl_scale_events_total{direction=\"up\",reason=\"other\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_scale_events_total{direction=\"up\",reason=\"load\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_scale_events_total{direction=\"down\",reason=\"other\"}"), "2");
    EXPECT_EQ(samples.at("preforkctl_scale_events_total{direction=\"down\",reason=\"idle\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_recycles_total{reason=\"rss\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_watchdog_timeouts_total"), "0");
    EXPECT_FALSE(samples.contains("preforkctl_workers_min"));  // a fixed worker count has no bounds
}

TEST(Exposition, ListsEveryWorkerStateEvenWithNoSlotInIt) {
    const auto samples = samples_of(render_metrics(control::Snapshot{}));
    for (const char* state : {"starting", "ready", "draining", "backoff", "parked", "stopping", "stopped"}) {
        EXPECT_EQ(samples.at(std::string("preforkctl_workers{state=\"") + state + "\"}"), "0") << state;
    }
    EXPECT_EQ(samples.at("preforkctl_draining_workers"), "0");
}

TEST(Exposition, CountsSlotsByStateAndDrainingWorkersOverAllSlots) {
    auto snapshot = busy_snapshot();
    snapshot.slots.push_back(slot(3, "ready", 104));
    snapshot.slots.back().draining = {92};
    const auto samples = samples_of(render_metrics(snapshot));
    EXPECT_EQ(samples.at("preforkctl_workers{state=\"ready\"}"), "2");
    EXPECT_EQ(samples.at("preforkctl_workers{state=\"backoff\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_workers{state=\"starting\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_workers{state=\"stopped\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_draining_workers"), "3");
}

TEST(Exposition, KeepsASlotInAStateItDoesNotKnow) {
    control::Snapshot snapshot;
    snapshot.slots = {slot(0, "hibernating", 0)};
    const auto samples = samples_of(render_metrics(snapshot));
    EXPECT_EQ(samples.at("preforkctl_workers{state=\"hibernating\"}"), "1");
}

TEST(Exposition, ListsEveryRestartReasonWithZeroesPlusTheReasonsTheSnapshotHas) {
    auto snapshot = busy_snapshot();
    snapshot.slots[0].restarts_by_reason["watchdog"] = 2;
    snapshot.slots[0].restarts_total = 6;
    const auto samples = samples_of(render_metrics(snapshot));
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"0\",reason=\"crash\"}"), "3");
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"0\",reason=\"failure\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"0\",reason=\"exit\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"0\",reason=\"spawn_failure\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"0\",reason=\"ready_timeout\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"0\",reason=\"watchdog\"}"), "2");
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"1\",reason=\"spawn_failure\"}"), "7");
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"2\",reason=\"crash\"}"), "0");
    EXPECT_FALSE(samples.contains("preforkctl_worker_restarts_total{slot=\"0\",reason=\"other\"}"));
}

TEST(Exposition, CountsRestartsWithoutAReasonAsOtherSoTheReasonsSumToTheTotal) {
    auto snapshot = busy_snapshot();
    snapshot.slots[0].restarts_total = 9;  // 4 have a reason
    const auto samples = samples_of(render_metrics(snapshot));
    EXPECT_EQ(samples.at("preforkctl_worker_restarts_total{slot=\"0\",reason=\"other\"}"), "5");
}

TEST(Exposition, ReportsEachSlotsWorker) {
    const auto samples = samples_of(render_metrics(busy_snapshot()));
    EXPECT_EQ(samples.at("preforkctl_worker_up{slot=\"0\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_worker_up{slot=\"1\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_worker_ready{slot=\"0\"}"), "1");
    EXPECT_EQ(samples.at("preforkctl_worker_ready{slot=\"2\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_worker_uptime_seconds{slot=\"0\"}"), "12.5");
    EXPECT_EQ(samples.at("preforkctl_worker_uptime_seconds{slot=\"1\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_worker_generation{slot=\"0\"}"), "1");
}

TEST(Exposition, ReportsMemoryCpuAndProcessesOnlyForSlotsWhoseUsageIsKnown) {
    const auto samples = samples_of(render_metrics(busy_snapshot()));
    EXPECT_EQ(samples.at("preforkctl_worker_resident_memory_bytes{slot=\"0\"}"), "52428800");
    EXPECT_EQ(samples.at("preforkctl_worker_cpu_seconds_total{slot=\"0\"}"), "1.75");
    EXPECT_EQ(samples.at("preforkctl_worker_processes{slot=\"0\"}"), "3");
    EXPECT_EQ(samples.at("preforkctl_worker_cpu_seconds_total{slot=\"2\"}"), "0");
    EXPECT_FALSE(samples.contains("preforkctl_worker_resident_memory_bytes{slot=\"1\"}"));
    EXPECT_FALSE(samples.contains("preforkctl_worker_cpu_seconds_total{slot=\"1\"}"));
    EXPECT_FALSE(samples.contains("preforkctl_worker_processes{slot=\"1\"}"));
}

TEST(Exposition, LabelsSharedListenersAllAndReuseportOnesByTheirSlotAndSkipsUnknownDepths) {
    const std::string text = render_metrics(busy_snapshot());
    const auto samples = samples_of(text);
    EXPECT_EQ(samples.at("preforkctl_listener_queue_length{listener=\"http\",address=\"0.0.0.0:8080\",slot=\"all\"}"),
              "5");
    EXPECT_EQ(samples.at("preforkctl_listener_backlog{listener=\"http\",address=\"0.0.0.0:8080\",slot=\"all\"}"),
              "4096");
    EXPECT_EQ(samples.at("preforkctl_listener_queue_length{listener=\"api\",address=\"127.0.0.1:9000\",slot=\"1\"}"),
              "0");
    EXPECT_EQ(samples.at("preforkctl_listener_backlog{listener=\"api\",address=\"127.0.0.1:9000\",slot=\"1\"}"),
              "128");
    EXPECT_THAT(text, Not(HasSubstr("listener=\"admin\"")));
}

TEST(Exposition, CountsOutputPerStream) {
    const auto samples = samples_of(render_metrics(busy_snapshot()));
    EXPECT_EQ(samples.at("preforkctl_output_lines_total{stream=\"stdout\"}"), "10");
    EXPECT_EQ(samples.at("preforkctl_output_lines_total{stream=\"stderr\"}"), "3");
    EXPECT_EQ(samples.at("preforkctl_output_bytes_total{stream=\"stdout\"}"), "500");
    EXPECT_EQ(samples.at("preforkctl_output_bytes_total{stream=\"stderr\"}"), "120");
    EXPECT_EQ(samples.at("preforkctl_output_dropped_lines_total{stream=\"stdout\"}"), "0");
    EXPECT_EQ(samples.at("preforkctl_output_dropped_lines_total{stream=\"stderr\"}"), "2");
}

TEST(Exposition, EscapesBackslashQuoteAndNewlineInLabelValues) {
    control::Snapshot snapshot;
    snapshot.version = "1.0 \"dev\"\\build\nline two";
    control::ListenerStatus listener{"odd\"name", "unix:/tmp/a\\b\nc.sock", "shared", -1, 1u, 2u};
    snapshot.listeners = {listener};
    const std::string text = render_metrics(snapshot);
    EXPECT_THAT(text, HasSubstr("preforkctl_build_info{version=\"1.0 \\\"dev\\\"\\\\build\\nline two\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("{listener=\"odd\\\"name\",address=\"unix:/tmp/a\\\\b\\nc.sock\",slot=\"all\"} 1\n"));
    for (const auto& line : lines_of(text)) EXPECT_FALSE(line.empty());  // no raw newline split a sample
}

TEST(Exposition, PrintsIntegersWholeAndDoublesSoTheyReadBackExactly) {
    control::Snapshot snapshot;
    snapshot.uptime_seconds = 0.1;
    snapshot.rolling_restarts = std::numeric_limits<std::uint64_t>::max();
    snapshot.out.bytes = 10'000'000'000;
    auto worker = slot(0, "ready", 1);
    worker.uptime_seconds = 1e-7;
    worker.usage = control::TreeUsage{std::uint64_t{1} << 40, 123456.789012, 1};
    snapshot.slots = {worker};
    const auto samples = samples_of(render_metrics(snapshot));
    EXPECT_EQ(samples.at("preforkctl_uptime_seconds"), "0.1");
    EXPECT_EQ(samples.at("preforkctl_rolling_restarts_total"), "18446744073709551615");
    EXPECT_EQ(samples.at("preforkctl_output_bytes_total{stream=\"stdout\"}"), "10000000000");
    EXPECT_EQ(samples.at("preforkctl_worker_resident_memory_bytes{slot=\"0\"}"), "1099511627776");
    EXPECT_EQ(std::stod(samples.at("preforkctl_worker_uptime_seconds{slot=\"0\"}")), 1e-7);
    EXPECT_EQ(samples.at("preforkctl_worker_cpu_seconds_total{slot=\"0\"}"), "123456.789012");
}

TEST(Exposition, SpellsNonFiniteValuesTheFormatsWay) {
    control::Snapshot snapshot;
    snapshot.uptime_seconds = std::numeric_limits<double>::quiet_NaN();
    auto worker = slot(0, "ready", 1);
    worker.uptime_seconds = std::numeric_limits<double>::infinity();
    snapshot.slots = {worker};
    const auto samples = samples_of(render_metrics(snapshot));
    EXPECT_EQ(samples.at("preforkctl_uptime_seconds"), "NaN");
    EXPECT_EQ(samples.at("preforkctl_worker_uptime_seconds{slot=\"0\"}"), "+Inf");
}

TEST(Exposition, PassesPromtoolCheckMetricsBusyOrEmpty) {
    if (::access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool is not installed";
    auto busy = busy_snapshot();
    busy.version = "0.1.0 \"odd\"\\";
    for (const auto& snapshot : {busy, control::Snapshot{}}) {
        char path[] = "/tmp/preforkctl-exposition-XXXXXX";
        const int fd = ::mkstemp(path);
        ASSERT_GE(fd, 0);
        ::close(fd);
        std::ofstream(path) << render_metrics(snapshot);
        const std::string command = std::string("/usr/bin/promtool check metrics < ") + path + " 2>&1";
        FILE* pipe = ::popen(command.c_str(), "r");
        ASSERT_NE(pipe, nullptr);
        std::string output;
        char buffer[512];
        while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
        const int status = ::pclose(pipe);
        ::unlink(path);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
        EXPECT_EQ(output, "");
    }
}
