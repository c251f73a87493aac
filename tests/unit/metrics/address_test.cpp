#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/address.hpp"

using namespace preforkctl;
using namespace preforkctl::metrics;
using ::testing::HasSubstr;

TEST(MetricsAddress, AcceptsHostPortAnyPortAndBracketedV6) {
    auto v4 = parse_metrics_address("127.0.0.1:9100");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->host, "127.0.0.1");
    EXPECT_EQ(v4->port, 9100);
    auto any = parse_metrics_address(":9100");
    ASSERT_TRUE(any);
    EXPECT_EQ(any->host, "0.0.0.0");
    EXPECT_EQ(any->port, 9100);
    auto v6 = parse_metrics_address("[::1]:65535");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->port, 65535);
}

TEST(MetricsAddress, AcceptsPortZeroForAnEphemeralPort) {
    auto ephemeral = parse_metrics_address("127.0.0.1:0");
    ASSERT_TRUE(ephemeral);
    EXPECT_EQ(ephemeral->port, 0);
}

TEST(MetricsAddress, FormatsV4PlainAndV6InBrackets) {
    EXPECT_EQ(format_metrics_address({"127.0.0.1", 9100}), "127.0.0.1:9100");
    EXPECT_EQ(format_metrics_address({"::1", 0}), "[::1]:0");
    EXPECT_EQ(format_metrics_address(*parse_metrics_address("[fe80::1]:80")), "[fe80::1]:80");
}

TEST(MetricsAddress, RejectsBadValuesWithOneSentenceNamingTheOptionAsAUsageError) {
    const std::pair<const char*, const char*> cases[] = {
        {"abc", "--metrics: \"abc\" is not HOST:PORT"},
        {"", "--metrics: \"\" is not HOST:PORT"},
        {"127.0.0.1", "--metrics: \"127.0.0.1\" is not HOST:PORT"},
        {"127.0.0.1:", "port from 0 to 65535"},
        {"127.0.0.1:65536", "port from 0 to 65535"},
        {"127.0.0.1:-1", "port from 0 to 65535"},
        {"127.0.0.1:+80", "port from 0 to 65535"},
        {"127.0.0.1:80x", "port from 0 to 65535"},
        {"localhost:9100", "numeric IPv4 address"},
        {"1.2.3:80", "numeric IPv4 address"},
        {"::1:80", "without brackets"},
        {"[::1:80", "[IPV6]:PORT"},
        {"[1.2.3.4]:80", "[IPV6]:PORT"},
        {"[::1]", "port from 0 to 65535"},
    };
    for (const auto& [text, expected] : cases) {
        auto parsed = parse_metrics_address(text);
        ASSERT_FALSE(parsed) << text;
        EXPECT_THAT(parsed.error().message, HasSubstr(expected)) << text;
        EXPECT_THAT(parsed.error().message, ::testing::StartsWith("--metrics: \"")) << text;
        EXPECT_EQ(parsed.error().exit, ExitCode::usage) << text;
        EXPECT_EQ(parsed.error().code, 0) << text;
    }
}
