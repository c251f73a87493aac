// The command line's log format, read before the command line is parsed (so that its errors already come out
// in that format).
#include "app/cli.hpp"

#include <gtest/gtest.h>

using preforkctl::app::requested_log_format;

TEST(RequestedLogFormat, TheLastOneBeforeTheSeparatorInEitherSpelling) {
    EXPECT_EQ(requested_log_format({}), "");
    EXPECT_EQ(requested_log_format({"-n", "2", "--", "srv"}), "");
    EXPECT_EQ(requested_log_format({"--log-format", "json", "--", "srv"}), "json");
    EXPECT_EQ(requested_log_format({"--log-format=json"}), "json");
    EXPECT_EQ(requested_log_format({"--log-format", "json", "--log-format=prefix"}), "prefix");
    EXPECT_EQ(requested_log_format({"--log-format=raw", "-v", "--log-format", "json"}), "json");
}

TEST(RequestedLogFormat, TheServersArgumentsAndAMissingValueDoNotCount) {
    EXPECT_EQ(requested_log_format({"--", "srv", "--log-format", "json"}), "");
    EXPECT_EQ(requested_log_format({"--log-format"}), "");
    EXPECT_EQ(requested_log_format({"--log-format", "--", "--log-format=json"}), "");
    EXPECT_EQ(requested_log_format({"--log-formats=json", "--log-format-x", "json"}), "");
}
