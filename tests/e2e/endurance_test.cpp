// Research §6 D50: a thousand restart cycles leave nothing behind: no descriptor, no memory growth, no
// zombie, and (in the ASan+UBSan build of tests/run.sh --sanitize) no leak or error report, which would
// make preforkctl's exit status non-zero.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include "harness.hpp"

using namespace e2e;

namespace {

// The fewest descriptors seen in 250 looks over about a second: a launch in progress holds up to three more
// for a moment (/dev/null and the exec report pipe), a leak raises the floor. With a restart every
// millisecond, a launch is under way much of the time, all the more in a sanitizer build that shares the
// machine with other tests: 50 looks once saw one in every look.
std::size_t open_fds(pid_t pid) {
    std::size_t fewest = SIZE_MAX;
    for (int look = 0; look < 250; ++look) {
        std::size_t count = 0;
        std::error_code error;
        for ([[maybe_unused]] const auto& entry :
             std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error)) {
            ++count;
        }
        fewest = std::min(fewest, count);
        std::this_thread::sleep_for(4ms);
    }
    return fewest;
}


}  // namespace

TEST(Endurance, AThousandRestartCyclesLeaveNoDescriptorMemoryOrZombieBehind) {
    constexpr int kCycles = 1000;
    // The worker is the uninstrumented shell, so that a sanitizer build spends its time in preforkctl. It
    // ignores TERM: the stop at the end must not cut a worker off between its two lines.
    Process run(preforkctl({"-n", "2", "--restart", "always", "--backoff", "1ms..1ms", "--min-uptime", "1ms",
                            "--max-restarts", "1000000", "--name", "probe_worker", "--", "/bin/sh", "-c",
                            "trap '' TERM; echo out 1 pid=$$; echo err 1 pid=$$ >&2"}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "| out 1 pid=").size() >= 100; }, 30s)) << run.err();
    const std::size_t fds_early = open_fds(run.pid());
    const long rss_early = status_kib(run.pid(), "VmRSS");
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "| out 1 pid=").size() >= kCycles; }, 120s))
        << lines_with(run.out(), "| out 1 pid=").size() << " cycles\n"
        << run.err().substr(0, 2000);
    const std::size_t fds_late = open_fds(run.pid());
    const long rss_late = status_kib(run.pid(), "VmRSS");
    // A worker that has just exited is a zombie until preforkctl reaps it a moment later: only one that stays
    // unreaped is left behind.
    EXPECT_TRUE(wait_until([&] { return zombie_children(run.pid()) == 0; }, 5s)) << zombie_children(run.pid());
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(60s), 0) << "a leak or sanitizer report at exit makes this non-zero\n"
                                << run.err().substr(run.err().size() > 4000 ? run.err().size() - 4000 : 0);

    EXPECT_EQ(fds_late, fds_early) << "descriptors after 100 and after " << kCycles << " cycles";
    if (!kSanitizedBuild) {  // ASan's quarantine holds freed memory back: RSS says nothing there
        EXPECT_LT(rss_late - rss_early, 512) << "KiB of growth between 100 and " << kCycles << " cycles";
    }
    // Every cycle's two lines arrived whole, each from a worker of its own.
    const std::regex whole(R"(probe_worker\.[01] \| out 1 pid=(\d+))");
    std::set<std::string> pids;
    for (const std::string& line : lines_with(run.out(), "| out 1 pid=")) {
        std::smatch match;
        ASSERT_TRUE(std::regex_match(line, match, whole)) << line;
        EXPECT_TRUE(pids.insert(match[1]).second) << "pid " << match[1] << " twice";
    }
    EXPECT_GE(lines_with(run.err(), "| err 1 pid=").size(), pids.size());
}
