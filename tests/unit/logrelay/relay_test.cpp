// Relay against real pipes, without workers: how preforkctl's own messages fare at a stderr that stalls.
#include "logrelay/relay.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <string>

using namespace preforkctl::logrelay;

namespace {

std::string read_available(int fd) {
    std::string out;
    char buffer[65536];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    return out;
}

}  // namespace

// In block mode worker lines are never dropped, so the message about what was dropped at a stderr that did
// not keep up must say that it was preforkctl's own messages, not "worker output (--log-overflow drop)".
TEST(Relay, OwnMessagesDroppedAtAStalledStderrAreNotCountedAsWorkerOutput) {
    int out[2];
    int err[2];
    ASSERT_EQ(::pipe2(out, O_NONBLOCK | O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(err, O_NONBLOCK | O_CLOEXEC), 0);
    const auto previous_level = spdlog::get_level();
    spdlog::set_level(spdlog::level::info);
    std::string seen;
    {
        boost::asio::io_context io;
        RelayOptions options;
        options.overflow = OverflowPolicy::block;
        Relay relay(io, options, out[1], err[1]);
        // 4 MiB of messages while nobody reads stderr: more than the relay keeps queued (2 MiB).
        const std::string text(100, 'm');
        for (int i = 0; i < 40000; ++i) spdlog::info("{} {}", i, text);
        for (int round = 0; round < 1000; ++round) {
            io.poll();
            const std::string more = read_available(err[0]);
            if (more.empty() && round > 10 && seen.find("dropped") != std::string::npos) break;
            seen += more;
        }
        relay.finish();
        seen += read_available(err[0]);
    }
    spdlog::set_level(previous_level);
    EXPECT_NE(seen.find("preforkctl: info: 0 mmm"), std::string::npos);
    EXPECT_EQ(seen.find("worker output"), std::string::npos) << seen.substr(seen.find("dropped"), 200);
    EXPECT_NE(seen.find("dropped"), std::string::npos);
    EXPECT_NE(seen.find("message"), std::string::npos);
    for (const int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
}
