// The example server behind preforkctl: a shared socket served by several workers (SPEC §5 shared).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

TEST(Serve, RequestsToTwoExampleServersAreServedByTwoDistinctPids) {
    Process run(preforkctl({"-n", "2", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 2; })) << run.err() << run.out();
    const int port = listening_port(run.err());
    ASSERT_NE(port, 0);
    // The example server answers "pid=PID slot=SLOT".
    const auto served_by = [&] {
        const std::string body = http_get(port);
        return body.rfind("pid=", 0) == 0 ? body.substr(4, body.find(' ') - 4) : std::string();
    };
    // An idle shared socket with EPOLLEXCLUSIVE waiters wakes the same worker every time, so "ask until both
    // answer" proves nothing. Instead: stop the worker that answered; the same socket must then be served by
    // the other one, and by the first again once it continues.
    const std::string first = served_by();
    ASSERT_FALSE(first.empty()) << run.err();
    ASSERT_EQ(::kill(std::stoi(first), SIGSTOP), 0);
    ASSERT_TRUE(wait_until([&] { return is_stopped(std::stoi(first)); }));
    const std::string second = served_by();
    ::kill(std::stoi(first), SIGCONT);
    ASSERT_FALSE(second.empty()) << "no other worker accepted from the shared socket";
    EXPECT_NE(second, first);
    ASSERT_EQ(::kill(std::stoi(second), SIGSTOP), 0);
    ASSERT_TRUE(wait_until([&] { return is_stopped(std::stoi(second)); }));
    EXPECT_EQ(served_by(), first);
    ::kill(std::stoi(second), SIGCONT);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Serve, AWorkerThatExitsIsReplacedAndTheSocketKeepsServing) {
    Process run(preforkctl({"-n", "1", "--backoff", "50ms..1s", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 1; })) << run.err();
    const int port = listening_port(run.err());
    const std::string first = http_get(port);
    ASSERT_THAT(first, HasSubstr("slot=0"));
    http_get(port, "/exit");
    // Connections made while the slot restarts wait in the shared socket's backlog: none is refused.
    std::string next;
    ASSERT_TRUE(wait_until([&] { next = http_get(port); return !next.empty() && next != first; }));
    EXPECT_THAT(next, HasSubstr("slot=0"));
}

TEST(Serve, WorkerOutputIsPrefixedPerSlotAndKeptPerStream) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--restart", "never", "--", PROBE_WORKER_BIN, "--stdout-lines", "3",
                        "--stderr-lines", "2", "--exit", "0"}),
            {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(run.wait(), 0) << run.err();
    for (const std::string slot : {"0", "1"}) {
        EXPECT_EQ(lines_with(run.out(), "probe_worker." + slot + " | out ").size(), 3u) << run.out();
        EXPECT_EQ(lines_with(run.err(), "probe_worker." + slot + " | err ").size(), 2u) << run.err();
    }
    EXPECT_TRUE(lines_with(run.out(), " | err ").empty());
}

TEST(Serve, AnUnterminatedLastLineIsFlushedWithItsPrefix) {
    Process run(preforkctl({"-n", "1", "--restart", "never", "--", PROBE_WORKER_BIN, "--print", "no-newline", "--exit",
                        "0"}));
    ASSERT_EQ(run.wait(), 0) << run.err();
    EXPECT_THAT(run.out(), HasSubstr("probe_worker.0 | no-newline\n"));
}
