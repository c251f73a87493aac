#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plan/durations.hpp"
#include "plan/listen_address.hpp"

using namespace preforkctl::plan;
using ::testing::HasSubstr;

TEST(ParseListen, AcceptsHostPortAnyPortBracketedV6AndUnixPaths) {
    auto a = parse_listen("127.0.0.1:8080");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 8080);
    auto any = parse_listen(":0");
    ASSERT_TRUE(any);
    EXPECT_EQ(any->host, "0.0.0.0");
    EXPECT_EQ(any->port, 0);
    auto v6 = parse_listen("[::1]:443,name=tls,backlog=128");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->ipv6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->name, "tls");
    EXPECT_EQ(v6->backlog, 128);
    EXPECT_EQ(format_address(*v6, 443), "[::1]:443");
    auto unix_socket = parse_listen("unix:/run/app.sock,mode=0660");
    ASSERT_TRUE(unix_socket);
    EXPECT_EQ(unix_socket->kind, ListenSpec::Kind::unix_path);
    EXPECT_EQ(*unix_socket->mode, 0660u);
    auto spaced = parse_listen(":80,name=web api");  // systemd takes any printable ASCII but ':'
    ASSERT_TRUE(spaced);
    EXPECT_EQ(spaced->name, "web api");
    ASSERT_TRUE(parse_listen(":80,name=" + std::string(255, 'n')));
}

TEST(ParseListen, RejectsBadAddressesWithAReason) {
    const std::pair<std::string, const char*> cases[] = {
        {"8080", "expected HOST:PORT"},
        {"host.example:80", "not a numeric IPv4 address"},
        {"1.2.3.4:65536", "port must be a number"},
        {"1.2.3.4:-1", "port must be a number"},
        {"::1:80", "write IPv6 addresses in brackets"},
        {"[::1:80", "missing ']'"},
        {"[1.2.3.4]:80", "not an IPv6 address"},
        {"unix:", "empty unix socket path"},
        {":80,mode=0600", "unix sockets only"},
        {":80,backlog=0", "backlog must be a positive number"},
        {":80,colour=red", "unknown option 'colour'"},
        {":80,name", "needs a value"},
        {":80,name=", "1 to 255 printable ASCII characters other than ':'"},
        {":80,name=a:b", "other than ':'"},
        {":80,name=caf\xc3\xa9", "printable ASCII"},
        {":80,name=tab\there", "printable ASCII"},
        {":80,name=" + std::string(256, 'n'), "1 to 255"},
    };
    for (const auto& [text, why] : cases) {
        auto spec = parse_listen(text);
        ASSERT_FALSE(spec) << text;
        EXPECT_THAT(spec.error().message, HasSubstr(why)) << text;
        EXPECT_THAT(spec.error().message, HasSubstr(std::string("'") + text + "'"));
    }
}

TEST(Durations, ParseMillisecondsSecondsMinutesAndBareSeconds) {
    EXPECT_EQ(*parse_duration("250ms"), Millis(250));
    EXPECT_EQ(*parse_duration("5s"), Millis(5000));
    EXPECT_EQ(*parse_duration("2m"), Millis(120'000));
    EXPECT_EQ(*parse_duration("1h"), Millis(3'600'000));
    EXPECT_EQ(*parse_duration("7"), Millis(7000));
    for (const char* bad : {"", "s", "-1s", "5x", "1.5s", "ms5"}) {
        EXPECT_FALSE(parse_duration(bad)) << bad;
    }
    EXPECT_EQ(format_duration(Millis(1500)), "1500ms");
    EXPECT_EQ(format_duration(Millis(60'000)), "1m");
    EXPECT_EQ(format_duration(Millis(0)), "0s");
}

TEST(Signals, ParseNamesWithOrWithoutSigAndNumbers) {
    EXPECT_EQ(*parse_signal("TERM"), 15);
    EXPECT_EQ(*parse_signal("sigquit"), 3);
    EXPECT_EQ(*parse_signal("10"), 10);
    EXPECT_FALSE(parse_signal("FOO"));
    EXPECT_FALSE(parse_signal("0"));
    EXPECT_EQ(signal_name(9), "SIGKILL");
}

TEST(ParseSize, TakesBytesOrBinarySuffixesInEitherSpelling) {
    EXPECT_EQ(*parse_size("4096"), 4096u);
    EXPECT_EQ(*parse_size("512M"), 512ull << 20);
    EXPECT_EQ(*parse_size("512m"), 512ull << 20);
    EXPECT_EQ(*parse_size("512MiB"), 512ull << 20);
    EXPECT_EQ(*parse_size("64k"), 64ull << 10);
    EXPECT_EQ(*parse_size("64KiB"), 64ull << 10);
    EXPECT_EQ(*parse_size("2G"), 2ull << 30);
    EXPECT_EQ(*parse_size("2g"), 2ull << 30);
    EXPECT_EQ(*parse_size("1T"), 1ull << 40);
    EXPECT_EQ(*parse_size("1TiB"), 1ull << 40);
    EXPECT_EQ(*parse_size("0"), 0u);
}

TEST(ParseSize, RejectsOtherUnitsSignsFractionsAndOverflow) {
    for (const char* bad : {"", "M", "-1M", "1.5G", "512MB", "512 M", "512mib", "1X", "20000000T",
                            "99999999999999999999"}) {
        auto size = parse_size(bad);
        ASSERT_FALSE(size) << bad;
        EXPECT_EQ(size.error().message, std::string("invalid size '") + bad + "' (use e.g. 512M, 2G)");
    }
}

TEST(FormatSize, UsesTheLargestUnitThatDividesTheSize) {
    EXPECT_EQ(format_size(512ull << 20), "512 MiB");
    EXPECT_EQ(format_size(2ull << 30), "2 GiB");
    EXPECT_EQ(format_size(1536ull << 10), "1536 KiB");
    EXPECT_EQ(format_size(1ull << 40), "1 TiB");
    EXPECT_EQ(format_size(1000), "1000 bytes");
    EXPECT_EQ(format_size(1), "1 byte");
    EXPECT_EQ(format_size(0), "0 bytes");
}
