#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/address.hpp"

using namespace preforkctl;
using namespace preforkctl::metrics;

TEST(MetricsAddress, FormatsV4PlainAndV6InBrackets) {
    EXPECT_EQ(format_metrics_address({"127.0.0.1", 9100}), "127.0.0.1:9100");
    EXPECT_EQ(format_metrics_address({"::1", 0}), "[::1]:0");
    EXPECT_EQ(format_metrics_address({"fe80::1", 80}), "[fe80::1]:80");
}
