// The example server behind preforkctl: a shared socket served by several workers (SPEC §5 shared).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

TEST(Serve, RequestsToTwoExampleServersAreServedByTwoDistinctPids) {
    Process run(preforkctl({"-n", "2", "-l", "127.0.0.1:0", "--", HELLO_SERVER_BIN}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving").size() == 2; })) << run.err() << run.out();
    const int port = listening_port(run.err());
    ASSERT_NE(port, 0);
    std::set<std::string> pids;
    // The kernel hands each new connection to whichever worker accepts first: both must show up.
    ASSERT_TRUE(wait_until([&] {
        const std::string body = http_get(port);
        if (!body.empty()) pids.insert(body.substr(0, body.find(' ')));
        return pids.size() == 2;
    }, 20s)) << "only " << pids.size() << " pid(s) served";
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
