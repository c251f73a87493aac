#include <gtest/gtest.h>

#include "sys/notify.hpp"

namespace preforkctl::sys {
namespace {

TEST(NotifyMessage, FindsAWholeLine) {
    EXPECT_TRUE(notify_message_has("STATUS=up\nREADY=1", "READY=1"));
    EXPECT_TRUE(notify_message_has("WATCHDOG=1\n", "WATCHDOG=1"));
    EXPECT_FALSE(notify_message_has("WATCHDOG=trigger", "WATCHDOG=1"));
    EXPECT_FALSE(notify_message_has("XREADY=1", "READY=1"));
}

TEST(NotifyMessage, ReadsANumberAssignedToAName) {
    EXPECT_EQ(notify_number("WATCHDOG=1\nWATCHDOG_USEC=250000", "WATCHDOG_USEC"), 250000u);
    EXPECT_EQ(notify_number("EXTEND_TIMEOUT_USEC=5000000\n", "EXTEND_TIMEOUT_USEC"), 5000000u);
    EXPECT_EQ(notify_number("WATCHDOG_USEC=", "WATCHDOG_USEC"), std::nullopt);
    EXPECT_EQ(notify_number("WATCHDOG_USEC=12x", "WATCHDOG_USEC"), std::nullopt);
    EXPECT_EQ(notify_number("WATCHDOG_USEC=-1", "WATCHDOG_USEC"), std::nullopt);
    EXPECT_EQ(notify_number("MY_WATCHDOG_USEC=5", "WATCHDOG_USEC"), std::nullopt);
    EXPECT_EQ(notify_number("WATCHDOG_USECS=5", "WATCHDOG_USEC"), std::nullopt);
    EXPECT_EQ(notify_number("READY=1", "WATCHDOG_USEC"), std::nullopt);
}

}  // namespace
}  // namespace preforkctl::sys
