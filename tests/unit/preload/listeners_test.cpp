// The preload library's pure half: parsing PREFORKCTL_PRELOAD_LISTENERS and matching a bind() address.
#include "preload/listeners.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

using namespace preforkctl::preload;

namespace {

sockaddr_in inet(const char* host, unsigned short port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    ::inet_pton(AF_INET, host, &address.sin_addr);
    return address;
}

sockaddr_in6 inet6(const char* host, unsigned short port) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_port = htons(port);
    ::inet_pton(AF_INET6, host, &address.sin6_addr);
    return address;
}

sockaddr_un unix_path(const char* path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    return address;
}

template <class Address>
int match(const Listener* listeners, int count, const Address& address, int type = SOCK_STREAM) {
    return match_listener(listeners, count, type, reinterpret_cast<const sockaddr*>(&address), sizeof address);
}

std::string entry(const std::string& head, const std::string& address) {
    return head + "," + std::to_string(address.size()) + "," + address;
}

}  // namespace

TEST(PreloadListeners, ParsesInetInet6AndUnixEntriesWithTheirFdsFamiliesTypesAndAddresses) {
    const std::string text = entry("3,inet,stream", "127.0.0.1:8080") + ";" + entry("4,inet6,stream", "[::1]:9090") +
                             ";" + entry("5,unix,stream", "/run/a;b,c.sock");
    Listener listeners[kMaxListeners];
    ASSERT_EQ(parse_listeners(text.c_str(), listeners, kMaxListeners), 3);
    EXPECT_EQ(listeners[0].fd, 3);
    EXPECT_EQ(listeners[0].family, AF_INET);
    EXPECT_EQ(listeners[0].type, SOCK_STREAM);
    EXPECT_EQ(listeners[0].port, 8080);
    const unsigned char loopback[4] = {127, 0, 0, 1};
    EXPECT_EQ(std::memcmp(listeners[0].host, loopback, 4), 0);
    EXPECT_EQ(listeners[1].fd, 4);
    EXPECT_EQ(listeners[1].family, AF_INET6);
    EXPECT_EQ(listeners[1].port, 9090);
    EXPECT_EQ(listeners[1].host[15], 1);
    EXPECT_EQ(listeners[2].fd, 5);
    EXPECT_EQ(listeners[2].family, AF_UNIX);
    EXPECT_STREQ(listeners[2].path, "/run/a;b,c.sock");
}

TEST(PreloadListeners, ParsesChildModeEntriesWithoutAnFd) {
    const std::string text = entry("-,inet,stream", "0.0.0.0:8080");
    Listener listeners[kMaxListeners];
    ASSERT_EQ(parse_listeners(text.c_str(), listeners, kMaxListeners), 1);
    EXPECT_EQ(listeners[0].fd, kNoFd);
    EXPECT_EQ(listeners[0].port, 8080);
}

TEST(PreloadListeners, RejectsMalformedTextAsAWhole) {
    Listener listeners[kMaxListeners];
    for (const std::string& bad : {std::string(), std::string("3"), std::string("3,inet,stream,14,127.0.0.1:8080x"),
                                  std::string("3,inet,stream,20,127.0.0.1:8080"), std::string("x,inet,stream,3,a:1"),
                                  std::string("3,ipx,stream,6,a:8080"), std::string("3,inet,seq,9,1.2.3.4:1"),
                                  std::string("3,inet,stream,12,1.2.3.4:99999"), std::string("3,inet,stream,8,1.2.3.4:"),
                                  std::string("3,inet6,stream,8,::1:8080"), std::string("3,unix,stream,0,"),
                                  entry("3,inet,stream", "127.0.0.1:80") + ";"}) {
        EXPECT_EQ(parse_listeners(bad.c_str(), listeners, kMaxListeners), -1) << bad;
    }
    EXPECT_EQ(parse_listeners(nullptr, listeners, kMaxListeners), -1);
}

TEST(PreloadListeners, RejectsMoreListenersThanFit) {
    const std::string one = entry("3,inet,stream", "127.0.0.1:80");
    Listener listeners[2];
    EXPECT_EQ(parse_listeners((one + ";" + one).c_str(), listeners, 2), 2);
    EXPECT_EQ(parse_listeners((one + ";" + one + ";" + one).c_str(), listeners, 2), -1);
}

class PreloadMatch : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string text = entry("3,inet,stream", "127.0.0.1:8080") + ";" + entry("4,inet,stream", "0.0.0.0:9090") +
                                 ";" + entry("5,inet6,stream", "[::]:8080") + ";" + entry("6,unix,stream", "/run/x.sock") +
                                 ";" + entry("7,inet,stream", "10.0.0.1:7070") + ";" + entry("8,inet,stream", "0.0.0.0:7070");
        count = parse_listeners(text.c_str(), listeners, kMaxListeners);
        ASSERT_EQ(count, 6);
    }
    Listener listeners[kMaxListeners];
    int count = 0;
};

TEST_F(PreloadMatch, TheSameHostAndPortMatches) {
    EXPECT_EQ(match(listeners, count, inet("127.0.0.1", 8080)), 0);
}

TEST_F(PreloadMatch, AWildcardRequestTakesAListenerOfAnyHost) {
    EXPECT_EQ(match(listeners, count, inet("0.0.0.0", 8080)), 0);
}

TEST_F(PreloadMatch, AWildcardListenerCoversAnyRequestedHost) {
    EXPECT_EQ(match(listeners, count, inet("127.0.0.1", 9090)), 1);
    EXPECT_EQ(match(listeners, count, inet("192.168.1.2", 9090)), 1);
}

TEST_F(PreloadMatch, TheSameHostWinsOverAWildcardListener) {
    EXPECT_EQ(match(listeners, count, inet("10.0.0.1", 7070)), 4);
    EXPECT_EQ(match(listeners, count, inet("10.0.0.2", 7070)), 5);
}

TEST_F(PreloadMatch, ADifferentHostPortFamilyOrTypeDoesNotMatch) {
    EXPECT_EQ(match(listeners, count, inet("127.0.0.2", 8080)), -1);
    EXPECT_EQ(match(listeners, count, inet("127.0.0.1", 8081)), -1);
    EXPECT_EQ(match(listeners, count, inet("127.0.0.1", 8080), SOCK_DGRAM), -1);
    EXPECT_EQ(match(listeners, count, inet6("::1", 9090)), -1);
}

TEST_F(PreloadMatch, PortZeroNeverMatches) {
    EXPECT_EQ(match(listeners, count, inet("0.0.0.0", 0)), -1);
    EXPECT_EQ(match(listeners, count, inet6("::", 0)), -1);
}

TEST_F(PreloadMatch, Inet6MatchesByHostOrWildcard) {
    EXPECT_EQ(match(listeners, count, inet6("::", 8080)), 2);
    EXPECT_EQ(match(listeners, count, inet6("::1", 8080)), 2);
}

TEST_F(PreloadMatch, UnixSocketsMatchByPathOnly) {
    EXPECT_EQ(match(listeners, count, unix_path("/run/x.sock")), 3);
    EXPECT_EQ(match(listeners, count, unix_path("/run/y.sock")), -1);
    // A length that stops right after the path (no NUL) still names it.
    const sockaddr_un address = unix_path("/run/x.sock");
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen("/run/x.sock"));
    EXPECT_EQ(match_listener(listeners, count, SOCK_STREAM, reinterpret_cast<const sockaddr*>(&address), length), 3);
}

TEST_F(PreloadMatch, ShortOrMissingAddressesDoNotMatch) {
    const sockaddr_in address = inet("127.0.0.1", 8080);
    EXPECT_EQ(match_listener(listeners, count, SOCK_STREAM, reinterpret_cast<const sockaddr*>(&address), 4), -1);
    EXPECT_EQ(match_listener(listeners, count, SOCK_STREAM, nullptr, 0), -1);
}
