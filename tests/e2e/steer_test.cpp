// CPU-local steering (SPEC §13, --steer cpu): on loopback a connection is received on the client's CPU, so a
// client pinned to CPU k must be served by the worker pinned to CPU k, also after ctl scale changed the group.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

namespace {

constexpr int kConnections = 50;

int allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

// The pid of every answer to `count` fresh connections made by a thread pinned to `cpu`.
std::vector<pid_t> served_from_cpu(int port, int cpu, int count) {
    std::vector<pid_t> pids;
    std::thread client([&] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(static_cast<std::size_t>(cpu), &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0) return;  // 0: this thread only
        for (int i = 0; i < count; ++i) pids.push_back(pid_in_body(http_get(port)));
    });
    client.join();
    return pids;
}

// Each live hello_server worker of `run` and the CPU it is pinned to (its Cpus_allowed_list).
std::map<int, pid_t> workers_by_cpu(const Process& run) {
    std::map<int, pid_t> workers;
    for (pid_t pid : children_named(run.pid(), "hello_server")) {
        const std::string cpus = proc_status_field(pid, "Cpus_allowed_list");
        if (!cpus.empty() && cpus.find_first_not_of("0123456789") == std::string::npos) {
            workers[std::stoi(cpus)] = pid;
        }
    }
    return workers;
}

// Connections from each worker's CPU, and how many were served by that worker; prints the counts.
void expect_served_on_the_receiving_cpu(const Process& run, int port, int workers) {
    std::map<int, pid_t> by_cpu;
    ASSERT_TRUE(wait_until([&] { return static_cast<int>((by_cpu = workers_by_cpu(run)).size()) == workers; }));
    for (const auto& [cpu, worker] : by_cpu) {
        const std::vector<pid_t> pids = served_from_cpu(port, cpu, kConnections);
        ASSERT_EQ(pids.size(), static_cast<std::size_t>(kConnections));
        int local = 0;
        for (pid_t pid : pids) local += pid == worker ? 1 : 0;
        std::printf("--steer cpu, %d workers: client on CPU %d, %d of %d connections served by the worker on CPU %d\n",
                    workers, cpu, local, kConnections, cpu);
        EXPECT_EQ(local, kConnections) << "client on CPU " << cpu;
    }
}

}  // namespace

TEST(Steer, EachConnectionIsServedByTheWorkerOnTheClientsCpu) {
    if (allowed_cpus() < 2) GTEST_SKIP() << "needs 2 CPUs";
    Process run(preforkctl({"-n", "2", "--affinity", "--socket-mode", "reuseport", "--steer", "cpu", "-l",
                            "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 2; })) << run.err();
    const std::map<int, pid_t> by_cpu = workers_by_cpu(run);
    ASSERT_EQ(by_cpu.size(), 2u) << run.err();
    if (by_cpu.begin()->first % 2 == by_cpu.rbegin()->first % 2) {
        GTEST_SKIP() << "the two CPUs fold onto the same index of a group of two";
    }
    expect_served_on_the_receiving_cpu(run, listening_port(run.err()), 2);
    EXPECT_EQ(lines_with(run.err(), "--steer cpu: each connection goes to the slot pinned").size(), 1u) << run.err();
}

// Only information: without a program the kernel picks by a hash of the addresses and ports.
TEST(Steer, WithoutSteeringTheHashSpreadsConnectionsOverBothWorkers) {
    if (allowed_cpus() < 2) GTEST_SKIP() << "needs 2 CPUs";
    Process run(preforkctl(
        {"-n", "2", "--affinity", "--socket-mode", "reuseport", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 2; })) << run.err();
    const int port = listening_port(run.err());
    for (const auto& [cpu, worker] : workers_by_cpu(run)) {
        int local = 0;
        for (pid_t pid : served_from_cpu(port, cpu, kConnections)) local += pid == worker ? 1 : 0;
        std::printf("without --steer: client on CPU %d, %d of %d connections served by the worker on CPU %d\n", cpu,
                    local, kConnections, cpu);
    }
}

// The program's modulus follows the group: 1 at the start, 2 after scale 2 (a stale modulus of 1 would send
// every connection to slot 0), and again 2 after the group shrank to 1 and grew back.
TEST(Steer, CtlScaleAttachesTheProgramAgainForTheNewGroupSize) {
    if (allowed_cpus() < 2) GTEST_SKIP() << "needs 2 CPUs";
    Process run(preforkctl({"-v", "--name", "steer", "-n", "1", "--affinity", "--socket-mode", "reuseport", "--steer",
                            "cpu", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 1; })) << run.err();
    const int port = listening_port(run.err());
    ASSERT_EQ(ctl({"--name", "steer", "scale", "2"}).status, 0) << run.err();
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 2; })) << run.err();
    const std::map<int, pid_t> by_cpu = workers_by_cpu(run);
    ASSERT_EQ(by_cpu.size(), 2u) << run.err();
    if (by_cpu.begin()->first % 2 == by_cpu.rbegin()->first % 2) {
        GTEST_SKIP() << "the two CPUs fold onto the same index of a group of two";
    }
    expect_served_on_the_receiving_cpu(run, port, 2);

    ASSERT_EQ(ctl({"--name", "steer", "scale", "1"}).status, 0) << run.err();
    // Its socket is closed (and the program attached again) once the worker is reaped.
    ASSERT_TRUE(wait_until([&] { return lines_with(run.err(), "slot 1 removed").size() == 1; })) << run.err();
    expect_served_on_the_receiving_cpu(run, port, 1);

    ASSERT_EQ(ctl({"--name", "steer", "scale", "2"}).status, 0) << run.err();
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 3; })) << run.err();
    expect_served_on_the_receiving_cpu(run, port, 2);
    EXPECT_EQ(lines_with(run.err(), "--steer cpu: cannot attach").size(), 0u) << run.err();
}

TEST(Steer, WithoutReuseportItIsOneUsageErrorLine) {
    Process run(preforkctl({"-n", "2", "--affinity", "--steer", "cpu", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    EXPECT_EQ(run.wait(), 2);
    EXPECT_EQ(run.err(),
              "preforkctl: error: --steer: cpu needs --socket-mode reuseport: it picks one of the "
              "slots' own sockets\n");
    EXPECT_EQ(run.out(), "");
}

TEST(Steer, WithoutAffinityItIsOneUsageErrorLine) {
    Process run(preforkctl(
        {"-n", "2", "--socket-mode", "reuseport", "--steer", "cpu", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    EXPECT_EQ(run.wait(), 2);
    EXPECT_EQ(run.err(), "preforkctl: error: --steer: cpu needs --affinity: each slot's worker must sit on one CPU\n");
    EXPECT_EQ(run.out(), "");
}
