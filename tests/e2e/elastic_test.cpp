// Elastic workers, recycling and the watchdog (SPEC §12), against tests/fixtures/slow_server.cpp: a server
// that takes one connection at a time, so concurrent clients wait in the listener's accept queue.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using nlohmann::json;

namespace {

// `ctl status --json` of preforkctl --name NAME, or a discarded value while it does not answer.
json status_of(const std::string& name) {
    const CtlResult result = ctl({"--name", name, "status", "--json"});
    return result.status == 0 ? json::parse(result.out, nullptr, false) : json(json::value_t::discarded);
}

// A count of the status (status[key], or status[key][reason]); 0 when it is absent.
std::int64_t count_of(const json& status, const std::string& key, const std::string& reason = "") {
    if (!status.is_object() || !status.contains(key)) return 0;
    const json& value = status[key];
    if (reason.empty()) return value.is_number() ? value.get<std::int64_t>() : 0;
    return value.is_object() && value.contains(reason) && value[reason].is_number() ? value[reason].get<std::int64_t>()
                                                                                    : 0;
}

// The pid of each slot in a status, by slot number.
std::map<int, pid_t> slot_pids(const json& status) {
    std::map<int, pid_t> pids;
    if (!status.is_object() || !status.contains("slots") || !status["slots"].is_array()) return pids;
    for (const json& slot : status["slots"]) {
        // A slot without a worker may show no pid, a null or 0.
        const bool numbered = slot.contains("slot") && slot["slot"].is_number_integer();
        if (numbered && slot.contains("pid") && slot["pid"].is_number_integer() && slot["pid"].get<pid_t>() > 0) {
            pids[slot["slot"].get<int>()] = slot["pid"].get<pid_t>();
        }
    }
    return pids;
}

// Waits until preforkctl --name NAME reports its listener and answers on its control socket; returns the
// port, or 0 once preforkctl has exited (a refused option) or after 10 s.
int wait_for_listener(Process& run, const std::string& name) {
    int port = 0;
    const bool up = wait_until([&] {
        if (!is_alive(run.pid())) return true;
        port = listening_port(run.err());
        return port != 0 && status_of(name).is_object();
    });
    return up && is_alive(run.pid()) ? port : 0;
}

// Number of slow_server workers that have said they listen (the "slow_server PID listening" line).
std::size_t started_workers(Process& run) {
    return lines_with(run.out(), "slow_server ").size();
}

// Runs `step` again and again on a thread of its own, with `pause` in between, until stop() or destruction
// (so that a failed ASSERT never leaves a thread running).
class Repeat {
public:
    Repeat(std::function<void()> step, std::chrono::milliseconds pause)
        : thread_([this, step = std::move(step), pause] {
              while (!stop_) {
                  step();
                  std::this_thread::sleep_for(pause);
              }
          }) {}
    ~Repeat() { stop(); }
    Repeat(const Repeat&) = delete;
    Repeat& operator=(const Repeat&) = delete;
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// HTTP clients on their own threads, each sending its requests one after another (a new connection each),
// until `requests` have been sent in all or stop(); every reply is kept.
class Load {
public:
    Load(int port, int clients, int requests, std::chrono::milliseconds pause = 0ms) : left_(requests) {
        for (int i = 0; i < clients; ++i) {
            threads_.emplace_back([this, port, pause] {
                while (!stop_ && left_.fetch_sub(1) > 0) {
                    HttpReply reply = http_request(port, "/", 20s);
                    {
                        std::lock_guard lock(mutex_);
                        replies_.push_back(std::move(reply));
                    }
                    if (pause.count() > 0) std::this_thread::sleep_for(pause);
                }
            });
        }
    }
    ~Load() { stop(); }
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;

    /// Lets the clients finish the requests they are in, and joins them.
    void stop() {
        stop_ = true;
        join();
    }
    /// Waits until every request has been answered (or has failed).
    void join() {
        for (std::thread& thread : threads_) {
            if (thread.joinable()) thread.join();
        }
    }
    [[nodiscard]] std::vector<HttpReply> replies() {
        std::lock_guard lock(mutex_);
        return replies_;
    }

private:
    std::atomic<bool> stop_{false};
    std::atomic<int> left_;
    std::mutex mutex_;
    std::vector<HttpReply> replies_;
    std::vector<std::thread> threads_;
};

// Replies that are not a 200 with a "pid=" body, each described, for the message of a failed expectation.
std::vector<std::string> failures_in(const std::vector<HttpReply>& replies) {
    std::vector<std::string> failures;
    for (const HttpReply& reply : replies) {
        if (reply.status != 200 || pid_in_body(reply.body) == 0) {
            failures.push_back(std::to_string(reply.status) + " " + reply.failure + " " + reply.body);
        }
    }
    return failures;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) text.append(line).append("\n");
    return text;
}

std::set<pid_t> pids_in(const std::vector<HttpReply>& replies) {
    std::set<pid_t> pids;
    for (const HttpReply& reply : replies) {
        if (const pid_t pid = pid_in_body(reply.body); pid > 0) pids.insert(pid);
    }
    return pids;
}

std::set<std::string> slots_in(const std::vector<HttpReply>& replies) {
    std::set<std::string> slots;
    for (const HttpReply& reply : replies) {
        const auto at = reply.body.find("slot=");
        if (at != std::string::npos) slots.insert(reply.body.substr(at + 5, reply.body.find('\n') - at - 5));
    }
    return slots;
}

}  // namespace

TEST(Elastic, ABurstAddsWorkersUpToTheMaximumAndTheQuietAfterwardsRemovesThemAgain) {
    Process run(preforkctl({"--name", "burst", "-n", "1..3", "--scale-up-after", "200ms", "--scale-down-after", "1s",
                            "-l", "127.0.0.1:0", "--", SLOW_SERVER_BIN, "--delay-ms", "300"}));
    const int port = wait_for_listener(run, "burst");
    ASSERT_NE(port, 0) << run.err();
    ASSERT_TRUE(wait_until([&] { return started_workers(run) == 1; })) << run.out() << run.err();

    std::atomic<std::int64_t> most_workers{0};
    std::atomic<std::size_t> most_processes{0};
    Repeat watch(
        [&] {
            const json status = status_of("burst");
            const std::int64_t workers = count_of(status, "workers");
            if (workers > most_workers) most_workers = workers;
            const std::size_t processes = children_named(run.pid(), "slow_server").size();
            if (processes > most_processes) most_processes = processes;
        },
        20ms);
    // 36 requests of 300 ms each: about 11 s for one worker, under 4 s once there are three.
    Load burst(port, 12, 36);
    burst.join();
    const auto replies = burst.replies();
    ASSERT_EQ(replies.size(), 36u);
    EXPECT_EQ(failures_in(replies).size(), 0u) << joined(failures_in(replies));
    EXPECT_GE(most_workers.load(), 2) << run.err();
    EXPECT_LE(most_workers.load(), 3) << run.err();
    EXPECT_LE(most_processes.load(), 3u) << "never more workers than MAX";
    EXPECT_FALSE(lines_with(run.err(), "adding slot").empty()) << run.err();
    EXPECT_GT(slots_in(replies).size(), 1u) << "the added workers served part of the burst";

    // With every queue empty for 1 s, one worker after the other is removed, down to MIN.
    json status;
    EXPECT_TRUE(wait_until(
        [&] {
            status = status_of("burst");
            return count_of(status, "workers") == 1 && slot_pids(status).size() == 1;
        },
        10s))
        << status.dump() << run.err();
    watch.stop();
    EXPECT_FALSE(lines_with(run.err(), "removing slot").empty()) << run.err();
    EXPECT_GE(count_of(status, "scale_ups"), 1);
    EXPECT_GE(count_of(status, "scale_downs"), 1);
    EXPECT_TRUE(wait_until([&] { return children_named(run.pid(), "slow_server").size() == 1; }))
        << "a removed worker is stopped";
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Elastic, OnDemandStartsTheFirstWorkerForAWaitingConnectionAndGoesBackToNone) {
    Process run(preforkctl(
        {"--name", "ondemand", "-n", "0..2", "--scale-down-after", "1s", "-l", "127.0.0.1:0", "--", SLOW_SERVER_BIN}));
    const int port = wait_for_listener(run, "ondemand");
    ASSERT_NE(port, 0) << run.err();
    const json idle = status_of("ondemand");
    EXPECT_EQ(count_of(idle, "workers"), 0) << idle.dump();
    EXPECT_TRUE(slot_pids(idle).empty()) << idle.dump();
    EXPECT_TRUE(children_named(run.pid(), "slow_server").empty());
    EXPECT_EQ(started_workers(run), 0u) << run.out();

    // The first connection waits in the queue while preforkctl starts a worker; it is answered, not refused.
    const HttpReply first = http_request(port, "/", 10s);
    ASSERT_EQ(first.status, 200) << first.failure << "\n" << run.err();
    const pid_t worker = pid_in_body(first.body);
    ASSERT_GT(worker, 0) << first.body;
    EXPECT_EQ(parent_of(worker), run.pid());
    // The worker may answer before the harness has read the log line that announced it.
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.err(), "adding slot").empty(); }, 5s)) << run.err();

    json status;
    EXPECT_TRUE(wait_until(
        [&] {
            status = status_of("ondemand");
            return count_of(status, "workers") == 0 && !is_alive(worker);
        },
        10s))
        << status.dump() << run.err();
    EXPECT_FALSE(lines_with(run.err(), "removing slot").empty()) << run.err();
    EXPECT_TRUE(children_named(run.pid(), "slow_server").empty());

    // And again from none.
    const HttpReply second = http_request(port, "/", 10s);
    ASSERT_EQ(second.status, 200) << second.failure << "\n" << run.err();
    EXPECT_NE(pid_in_body(second.body), worker);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Elastic, AWorkerAboveMaxRssIsReplacedWithoutAFailedRequest) {
    // Each request keeps 2 MiB more: a fresh worker crosses the limit after some twenty requests.
    const std::string limit = kSanitizedBuild ? "160M" : "40M";
    Process run(preforkctl({"--name", "rss", "-n", "1", "--max-rss", limit, "-l", "127.0.0.1:0", "--", SLOW_SERVER_BIN,
                            "--grow-kib", "2048", "--delay-ms", "20"}));
    const int port = wait_for_listener(run, "rss");
    ASSERT_NE(port, 0) << run.err();
    const HttpReply first = http_request(port);
    ASSERT_EQ(first.status, 200) << first.failure << run.err();
    const pid_t original = pid_in_body(first.body);

    Load steady(port, 1, 1'000'000, 30ms);
    json status;
    const bool recycled = wait_until(
        [&] {
            status = status_of("rss");
            const auto pids = pids_in(steady.replies());
            return count_of(status, "recycles", "rss") >= 1 &&
                   std::any_of(pids.begin(), pids.end(), [&](pid_t pid) { return pid != original; });
        },
        15s);
    steady.stop();
    EXPECT_TRUE(recycled) << status.dump() << run.err();
    EXPECT_EQ(failures_in(steady.replies()).size(), 0u) << joined(failures_in(steady.replies()));
    EXPECT_FALSE(lines_with(run.err(), "recycling").empty()) << run.err();
    EXPECT_TRUE(wait_until([&] { return !is_alive(original); })) << "the recycled worker is stopped";
    const HttpReply after = http_request(port);
    EXPECT_EQ(after.status, 200) << after.failure;
    EXPECT_NE(pid_in_body(after.body), original);
}

TEST(Elastic, WorkersAtTheEndOfTheirLifetimeAreReplacedOneAtATimeWithoutAFailedRequest) {
    // A replacement counts as ready 300 ms after it started: until then its slot is being recycled, and no
    // other slot may be.
    Process run(preforkctl({"--name", "life", "-n", "2", "--max-lifetime", "1s", "--lifetime-jitter", "500ms",
                            "--ready", "delay:300ms", "-l", "127.0.0.1:0", "--", SLOW_SERVER_BIN, "--delay-ms", "20"}));
    const int port = wait_for_listener(run, "life");
    ASSERT_NE(port, 0) << run.err();
    std::map<int, pid_t> first;
    ASSERT_TRUE(wait_until([&] {
        first = slot_pids(status_of("life"));
        return first.count(0) == 1 && first.count(1) == 1;
    })) << run.err();
    // The two first workers started together; the watch begins once they are past that age.
    ASSERT_TRUE(wait_until([&] {
        return std::all_of(first.begin(), first.end(), [](const auto& slot) { return age_of(slot.second) >= 300ms; });
    }));

    constexpr auto kYoung = 250ms;
    std::atomic<std::size_t> most_young{0};
    std::atomic<std::size_t> most_processes{0};
    Repeat watch(
        [&] {
            std::size_t young = 0;
            const auto workers = children_named(run.pid(), "slow_server");
            for (const pid_t pid : workers) {
                const auto age = age_of(pid);
                if (age >= 0ms && age < kYoung) ++young;
            }
            if (young > most_young) most_young = young;
            if (workers.size() > most_processes) most_processes = workers.size();
        },
        10ms);
    Load steady(port, 2, 1'000'000);
    json status;
    const bool replaced = wait_until(
        [&] {
            status = status_of("life");
            const auto now = slot_pids(status);
            const auto replaced_slot = [&](int slot) { return now.count(slot) == 1 && now.at(slot) != first.at(slot); };
            return count_of(status, "recycles", "lifetime") >= 4 && replaced_slot(0) && replaced_slot(1);
        },
        12s);
    steady.stop();
    watch.stop();
    EXPECT_TRUE(replaced) << status.dump() << run.err();
    EXPECT_EQ(failures_in(steady.replies()).size(), 0u) << joined(failures_in(steady.replies()));
    EXPECT_GE(lines_with(run.err(), "recycling").size(), 4u) << run.err();
    EXPECT_LE(most_young.load(), 1u) << "two slots were being recycled at the same time";
    EXPECT_GE(most_processes.load(), 3u) << "the replacement starts before the old worker is stopped";
    for (const auto& [slot, pid] : first) EXPECT_FALSE(is_alive(pid)) << "slot " << slot;
}

TEST(Elastic, AWorkerThatStopsPingingTheWatchdogIsAbortedAndRestarted) {
    Process run(preforkctl({"--name", "dog", "-n", "1", "--watchdog", "300ms", "--stop-timeout", "1s", "--backoff",
                            "10ms..100ms", "-l", "127.0.0.1:0", "--", SLOW_SERVER_BIN, "--watchdog"}));
    const int port = wait_for_listener(run, "dog");
    ASSERT_NE(port, 0) << run.err();
    const HttpReply first = http_request(port);
    ASSERT_EQ(first.status, 200) << first.failure << run.err();
    const pid_t pinging = pid_in_body(first.body);
    EXPECT_EQ(environment_of(pinging, "WATCHDOG_USEC").value_or("(unset)"), "300000");
    EXPECT_TRUE(environment_of(pinging, "NOTIFY_SOCKET").has_value());
    // WATCHDOG=1 every 100 ms keeps it alive well past 300 ms.
    EXPECT_FALSE(wait_until([&] { return !is_alive(pinging); }, 1500ms)) << run.err();

    ASSERT_EQ(http_request(port, "/hang").status, 200);
    EXPECT_TRUE(wait_until([&] { return !is_alive(pinging); }, 5s)) << run.err();
    json status;
    EXPECT_TRUE(wait_until([&] {
        status = status_of("dog");
        const auto pids = slot_pids(status);
        return count_of(status, "watchdog_timeouts") >= 1 && pids.count(0) == 1 && pids.at(0) != pinging;
    })) << status.dump();
    ASSERT_TRUE(status.is_object() && status["slots"].is_array() && !status["slots"].empty()) << status.dump();
    EXPECT_GE(count_of(status["slots"][0], "restarts_by_reason", "watchdog"), 1) << status.dump();
    EXPECT_EQ(status["slots"][0]["last_exit"].is_object() ? status["slots"][0]["last_exit"]["text"] : json(), "SIGABRT")
        << status.dump();
    EXPECT_FALSE(lines_with(run.err(), "WATCHDOG=1").empty()) << run.err();

    // The replacement serves, and WATCHDOG=trigger has it aborted at once although it keeps pinging.
    HttpReply next;
    ASSERT_TRUE(wait_until([&] {
        next = http_request(port, "/", 2s);
        return next.status == 200 && pid_in_body(next.body) != pinging;
    })) << next.failure
        << run.err();
    const pid_t triggering = pid_in_body(next.body);
    ASSERT_EQ(http_request(port, "/trigger").status, 200);
    EXPECT_TRUE(wait_until([&] { return !is_alive(triggering); }, 5s)) << run.err();
    EXPECT_TRUE(wait_until([&] { return count_of(status = status_of("dog"), "watchdog_timeouts") >= 2; }))
        << status.dump();
    EXPECT_TRUE(wait_until([&] {
        next = http_request(port, "/", 2s);
        return next.status == 200 && pid_in_body(next.body) != triggering;
    })) << next.failure
        << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Elastic, AnAddedSlotIsPinnedToAnotherCpuWithAffinity) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    ASSERT_EQ(::sched_getaffinity(0, sizeof allowed, &allowed), 0);
    if (CPU_COUNT(&allowed) < 2) GTEST_SKIP() << "needs two CPUs";
    Process run(
        preforkctl({"--name", "pin", "-n", "1..2", "--affinity", "--scale-up-after", "200ms", "--scale-down-after",
                    "30s", "-l", "127.0.0.1:0", "--", SLOW_SERVER_BIN, "--delay-ms", "300"}));
    const int port = wait_for_listener(run, "pin");
    ASSERT_NE(port, 0) << run.err();
    Load burst(port, 8, 16);
    std::map<int, pid_t> pids;
    EXPECT_TRUE(wait_until([&] {
        pids = slot_pids(status_of("pin"));
        return pids.count(0) == 1 && pids.count(1) == 1;
    })) << run.err();
    burst.join();
    ASSERT_TRUE(pids.count(0) == 1 && pids.count(1) == 1) << run.err();
    const std::string cpu0 = proc_status_field(pids.at(0), "Cpus_allowed_list");
    const std::string cpu1 = proc_status_field(pids.at(1), "Cpus_allowed_list");
    for (const std::string& cpu : {cpu0, cpu1}) {
        ASSERT_EQ(cpu.find_first_not_of("0123456789"), std::string::npos) << "pinned to one CPU, not " << cpu;
        ASSERT_FALSE(cpu.empty());
        EXPECT_TRUE(CPU_ISSET(static_cast<std::size_t>(std::stoi(cpu)), &allowed)) << cpu;
    }
    EXPECT_NE(cpu0, cpu1) << "the added slot shares the first slot's CPU";
    EXPECT_EQ(failures_in(burst.replies()).size(), 0u) << joined(failures_in(burst.replies()));
}

namespace {

// Context switches of every thread of `pid` so far: how often it woke up.
long wake_ups(pid_t pid) {
    long total = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        std::ifstream status(task.path() / "status");
        std::string line;
        while (std::getline(status, line)) {
            for (const char* key : {"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"}) {
                if (line.rfind(key, 0) == 0) total += std::stol(line.substr(std::strlen(key)));
            }
        }
    }
    return total;
}

}  // namespace

// At MIN with empty queues preforkctl only watches its sockets: it does not wake at all. Between the bounds
// it samples the queues (a quarter of --scale-up-after here), which the second half shows.
TEST(Elastic, AnIdlePreforkctlAtMinDoesNotWakeAndSamplesOnlyBetweenTheBounds) {
    Process run(preforkctl({"--name", "idle", "-n", "1..3", "--scale-up-after", "200ms", "--scale-down-after", "1h",
                            "-l", "127.0.0.1:0", "--", SLOW_SERVER_BIN}));
    ASSERT_NE(wait_for_listener(run, "idle"), 0) << run.err();
    ASSERT_TRUE(wait_until([&] { return started_workers(run) == 1; })) << run.out() << run.err();
    const long before = wake_ups(run.pid());
    std::this_thread::sleep_for(2s);  // the quiet time being measured, not a wait for something to happen
    EXPECT_LE(wake_ups(run.pid()) - before, 1) << "preforkctl woke while idle at MIN";

    const CtlResult scaled = ctl({"--name", "idle", "scale", "2"});
    ASSERT_EQ(scaled.status, 0) << scaled.err;
    const long between = wake_ups(run.pid());
    std::this_thread::sleep_for(2s);
    EXPECT_GE(wake_ups(run.pid()) - between, 10) << "between MIN and MAX the queues are sampled every 50 ms";
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Elastic, CtlScaleMovesAnElasticCountOnlyWithinItsBounds) {
    Process run(preforkctl({"--name", "bounds", "-n", "1..3", "-l", "127.0.0.1:0", "--", SLOW_SERVER_BIN}));
    ASSERT_NE(wait_for_listener(run, "bounds"), 0) << run.err();
    const CtlResult above = ctl({"--name", "bounds", "scale", "4"});
    EXPECT_NE(above.status, 0);
    EXPECT_NE(above.err.find("elastic (-n 1..3): cannot scale to 4"), std::string::npos) << above.err << above.out;
    const CtlResult below = ctl({"--name", "bounds", "scale", "0"});
    EXPECT_NE(below.status, 0);
    EXPECT_NE(below.err.find("cannot scale to 0"), std::string::npos) << below.err << below.out;
    const CtlResult inside = ctl({"--name", "bounds", "scale", "3"});
    EXPECT_EQ(inside.status, 0) << inside.err;
    EXPECT_TRUE(wait_until([&] { return started_workers(run) == 3; })) << run.out();
    const json status = status_of("bounds");
    EXPECT_EQ(count_of(status, "workers"), 3);
    EXPECT_EQ(count_of(status["scale_reasons"], "up", "request"), 2) << status.dump();
    EXPECT_EQ(status["elastic"], (json{{"min", 1}, {"max", 3}})) << status.dump();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// A unix listener has no TCP_INFO: preforkctl watches it for a connection instead.
TEST(Elastic, OnDemandOnAUnixSocketServesTheFirstConnection) {
    TempDir dir;
    const std::string path = dir.path() + "/app.sock";
    Process run(preforkctl({"--name", "unixdemand", "-n", "0..1", "-l", "unix:" + path, "--", SLOW_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return status_of("unixdemand").is_object() || !is_alive(run.pid()); }));
    ASSERT_TRUE(is_alive(run.pid())) << run.err();
    EXPECT_EQ(started_workers(run), 0u);

    const int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(client, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
    timeval timeout{10, 0};
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(client, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    std::string answer;
    char buffer[4096];
    for (ssize_t n = 0; (n = ::recv(client, buffer, sizeof buffer, 0)) > 0;)
        answer.append(buffer, static_cast<std::size_t>(n));
    ::close(client);
    EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer << run.err();
    // The worker's first line may still be on its way through the relay when its answer has arrived.
    EXPECT_TRUE(wait_until([&] { return started_workers(run) >= 1; })) << run.out();
    EXPECT_EQ(started_workers(run), 1u) << run.out();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// EXTEND_TIMEOUT_USEC= gives a worker more time to send READY=1 than --ready-timeout, as systemd does for a
// service's start timeout; WATCHDOG_USEC= from a worker sets its own watchdog interval.
TEST(Elastic, AWorkerMayExtendItsReadyTimeoutAndSetItsWatchdogInterval) {
    if (::access("/usr/bin/systemd-notify", X_OK) != 0) GTEST_SKIP() << "systemd-notify is not installed";
    Process run(preforkctl({"--name", "extend", "-n", "1", "--ready", "notify", "--ready-timeout", "300ms", "--watchdog",
                            "300ms", "--", "sh", "-c",
                            "systemd-notify EXTEND_TIMEOUT_USEC=5000000; sleep 1; "
                            "systemd-notify --ready WATCHDOG_USEC=10000000; echo ready sent; exec sleep 60"}));
    json status;
    ASSERT_TRUE(wait_until(
        [&] {
            status = status_of("extend");
            return status.is_object() && !status["slots"].empty() && status["slots"][0]["ready"] == true;
        },
        5s))
        << status.dump() << run.err();
    EXPECT_EQ(count_of(status["slots"][0], "restarts_total"), 0) << "killed at --ready-timeout\n" << run.err();
    const pid_t worker = slot_pids(status).at(0);
    // Without its WATCHDOG_USEC=, the silent worker would be aborted after 300 ms.
    EXPECT_FALSE(wait_until([&] { return !is_alive(worker); }, 1500ms)) << run.err();
    EXPECT_EQ(count_of(status_of("extend"), "watchdog_timeouts"), 0);
    EXPECT_FALSE(lines_with(run.out(), "ready sent").empty()) << run.out();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}
