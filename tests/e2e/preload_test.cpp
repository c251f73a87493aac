// --preload (SPEC §13): unmodified servers that bind the address themselves serve preforkctl's socket.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;

namespace {

// user + system CPU ticks of `pid` (/proc/PID/stat fields 14 and 15).
long cpu_ticks(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    long utime = 0;
    long stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14) utime = std::stol(field);
        if (i == 15) stime = std::stol(field);
    }
    return utime + stime;
}

// Sends `count` requests; returns the bodies of those answered with 200.
std::vector<std::string> ask(int port, int count, const std::string& path = "/") {
    std::vector<std::string> bodies;
    for (int i = 0; i < count; ++i) {
        const HttpReply reply = http_request(port, path, 5s);
        if (reply.status == 200) bodies.push_back(reply.body);
    }
    return bodies;
}

}  // namespace

TEST(Preload, PythonHttpServerWorkersServeTheSharedSocketAndAReplacementServesItToo) {
    if (!on_path("python3")) GTEST_SKIP() << "python3 is missing";
    // http.server binds HOST:PORT itself; {host} and {port} are the listener's, so the bind() matches it.
    Process run(preforkctl({"-n", "2", "--preload", "--backoff", "50ms..1s", "-l", "127.0.0.1:0", "--", "python3",
                            "-m", "http.server", "{port}", "--bind", "{host}"}));
    expect_preloaded_pair_serves(run, [](int port) { return http_request(port, "/", 5s).status == 200; });
}

TEST(Preload, ABlockingAndANonBlockingServerShareOneSocketAndTheBlockingOneNeverSeesEagain) {
    Process run(preforkctl({"-n", "2", "--preload", "-l", "127.0.0.1:0", "--", BIND_SERVER_BIN, "{host}", "{port}",
                            "--nonblocking-slot", "1"}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving on fd").size() == 2; })) << run.err() << run.out();
    const int port = listening_port(run.err());
    const std::vector<pid_t> workers = live_children(run.pid());
    ASSERT_EQ(workers.size(), 2u);
    for (pid_t pid : workers) EXPECT_TRUE(serves_the_shared_socket(run.pid(), pid)) << pid;

    // Each one alone (the other stopped), then both together racing for every connection.
    std::set<std::string> modes;
    for (pid_t stopped : workers) {
        ASSERT_EQ(::kill(stopped, SIGSTOP), 0);
        ASSERT_TRUE(wait_until([&] { return is_stopped(stopped); }));
        const auto bodies = ask(port, 3);
        ::kill(stopped, SIGCONT);
        ASSERT_EQ(bodies.size(), 3u) << run.err();
        for (const std::string& body : bodies) {
            EXPECT_NE(pid_in_body(body), stopped);
            modes.insert(body.substr(body.find("mode="), body.find(' ', body.find("mode=")) - body.find("mode=")));
            // Each server sees its own choice in F_GETFL, keeps its fd number's FD_CLOEXEC, and a blocking
            // accept() never fails with EAGAIN although the shared socket is non-blocking.
            if (body.find("mode=blocking") != std::string::npos) {
                EXPECT_THAT(body, HasSubstr("getfl=blocking"));
                EXPECT_THAT(body, HasSubstr("eagain=0"));
            } else {
                EXPECT_THAT(body, HasSubstr("getfl=nonblocking"));
            }
            EXPECT_THAT(body, HasSubstr("cloexec=1"));
        }
    }
    EXPECT_EQ(modes, (std::set<std::string>{"mode=blocking", "mode=nonblocking"}));
    for (const std::string& body : ask(port, 40)) {
        if (body.find("mode=blocking") != std::string::npos) {
            EXPECT_THAT(body, HasSubstr("eagain=0"));
        }
    }
    EXPECT_TRUE(lines_with(run.err(), "EAGAIN").empty()) << run.err();

    // Idle, the blocking worker waits in poll(): it does not spin.
    const pid_t blocking = workers[0];
    const long before = cpu_ticks(blocking);
    ::usleep(500'000);
    EXPECT_LE(cpu_ticks(blocking) - before, 5);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Preload, AWorkerThatShutsItsSocketDownLeavesTheOthersServing) {
    Process run(preforkctl({"-n", "2", "--preload", "--backoff", "50ms..1s", "-l", "127.0.0.1:0", "--",
                            BIND_SERVER_BIN, "{host}", "{port}"}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving on fd").size() == 2; })) << run.err() << run.out();
    const int port = listening_port(run.err());
    const HttpReply shut = http_request(port, "/shutdown", 5s);
    ASSERT_EQ(shut.status, 200) << shut.failure;
    const pid_t quitter = pid_in_body(shut.body);
    ASSERT_TRUE(wait_until([&] { return !is_alive(quitter); }));
    // The sibling never sees its accept() fail: every request is answered, and preforkctl had nothing to re-arm.
    EXPECT_EQ(ask(port, 20).size(), 20u) << run.err();
    EXPECT_TRUE(lines_with(run.err(), "shut down").empty()) << run.err();
    EXPECT_TRUE(lines_with(run.err(), "accept:").empty()) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Preload, AUnixSocketPathIsAdoptedAndOneServersUnlinkLeavesItInPlace) {
    TempDir dir;
    const std::string path = dir.path() + "/s.sock";
    Process run(preforkctl({"-n", "2", "--preload", "-l", "unix:" + path, "--", BIND_SERVER_BIN, "-", "-", "--unix",
                            path}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving on fd").size() == 2; })) << run.err() << run.out();
    for (pid_t pid : live_children(run.pid())) EXPECT_TRUE(serves_the_shared_socket(run.pid(), pid)) << pid;
    EXPECT_EQ(::access(path.c_str(), F_OK), 0) << "the servers' unlink() before bind() removed preforkctl's socket";
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Preload, WithoutPreloadTheServersOwnBindFindsTheAddressTaken) {
    Process run(preforkctl({"-n", "1", "--restart", "never", "-l", "127.0.0.1:0", "--", BIND_SERVER_BIN, "{host}",
                            "{port}"}));
    EXPECT_EQ(run.wait(), 1) << run.err();
    EXPECT_THAT(run.err(), HasSubstr("Address already in use"));
}

TEST(Preload, AMissingLibraryIsOneUsageErrorLine) {
    // A copy of preforkctl elsewhere finds no library beside it (nor, in a test build, at the install path).
    TempDir dir;
    const std::string copy = dir.path() + "/preforkctl";
    ASSERT_EQ(std::system(("cp " PREFORKCTL_BIN " " + copy).c_str()), 0);
    if (::access(PREFORKCTL_PRELOAD_INSTALL_CHECK, F_OK) == 0) GTEST_SKIP() << "the library is installed";
    Process run({copy, "--preload", "-l", "127.0.0.1:0", "--", "true"});
    EXPECT_EQ(run.wait(), 2);
    EXPECT_THAT(run.err(), HasSubstr("preforkctl: error: --preload: libpreforkctl-preload.so is not installed"));
    EXPECT_EQ(lines_with(run.err(), "error").size(), 1u) << run.err();
}

TEST(Preload, EachInterposedCallActsOnThisWorkersFdAndLeavesOtherSocketsAlone) {
    Process run(preforkctl({"-n", "1", "--preload", "--restart", "never", "-l", "127.0.0.1:0,backlog=77", "--",
                            PRELOAD_PROBE_BIN, "{host}", "{port}"}));
    EXPECT_EQ(run.wait(), 0) << run.out() << run.err();
    EXPECT_THAT(run.out(), HasSubstr("done")) << run.out() << run.err();
    EXPECT_TRUE(lines_with(run.out(), "FAIL").empty()) << run.out();
    EXPECT_GE(lines_with(run.out(), " ok ").size(), 19u) << run.out();
}

TEST(Preload, WithoutPreloadTheProbeSeesItsOwnSocketAndFails) {
    // The probe's checks can fail: without the library its bind() finds the address taken.
    Process run(preforkctl({"-n", "1", "--restart", "never", "-l", "127.0.0.1:0,backlog=77", "--",
                            PRELOAD_PROBE_BIN, "{host}", "{port}"}));
    EXPECT_EQ(run.wait(), 1) << run.out() << run.err();
    EXPECT_THAT(run.out(), HasSubstr("FAIL bind"));
}

TEST(Preload, InChildModeEveryCopyBindsThePortItselfWithSoReuseport) {
    // No shared socket: the library sets SO_REUSEPORT before each server's own bind(), so both copies bind.
    // Without the library the second copy's bind() would fail: bind_server sets only SO_REUSEADDR.
    const int port = free_tcp_port();
    ASSERT_NE(port, 0);
    Process run(preforkctl({"-n", "2", "--preload", "--socket-mode", "child", "-l",
                            "127.0.0.1:" + std::to_string(port), "--", BIND_SERVER_BIN, "{host}", "{port}"}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "serving on fd").size() == 2; })) << run.err() << run.out();
    const std::vector<pid_t> workers = live_children(run.pid());
    ASSERT_EQ(workers.size(), 2u);
    std::set<std::string> sockets;
    for (pid_t pid : workers) sockets.insert(fd_target(pid, 3));
    EXPECT_EQ(sockets.size(), 2u) << "each copy has a socket of its own on fd 3";
    EXPECT_EQ(ask(port, 5).size(), 5u) << run.err();
    EXPECT_TRUE(lines_with(run.err(), "Address already in use").empty()) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Preload, WithoutPreforkctlsListenersTheLibraryDoesNothing) {
    // The library preloaded into a server that preforkctl did not start (no PREFORKCTL_PRELOAD_LISTENERS):
    // its bind() is the kernel's, on a socket of its own.
    const std::string library = std::string(PREFORKCTL_BIN).substr(0, std::string(PREFORKCTL_BIN).rfind('/')) +
                                "/libpreforkctl-preload.so";
    ASSERT_EQ(::access(library.c_str(), R_OK), 0) << library;
    Process server({BIND_SERVER_BIN, "127.0.0.1", "0"}, {{"LD_PRELOAD=" + library}});
    ASSERT_TRUE(wait_until([&] { return !lines_with(server.out(), "serving on fd").empty(); }))
        << server.out() << server.err();
    const std::string line = lines_with(server.out(), "serving on fd").front();
    const int port = std::atoi(line.c_str() + line.find(" port ") + 6);
    ASSERT_GT(port, 0) << line;
    const HttpReply reply = http_request(port, "/", 5s);
    EXPECT_EQ(reply.status, 200) << reply.failure;
    EXPECT_THAT(reply.body, HasSubstr("getfl=blocking"));
    EXPECT_EQ(pid_in_body(reply.body), server.pid());
    server.signal(SIGTERM);
    server.wait();
}
