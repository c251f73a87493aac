#include "control/protocol.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>

namespace preforkctl::control {
namespace {

using ::testing::HasSubstr;

Request parsed(std::string_view line) {
    auto request = parse_request(line);
    EXPECT_TRUE(request.ok()) << line << ": " << (request.ok() ? "" : request.error().message);
    return request.ok() ? *request : Request{};
}

std::string refusal(std::string_view line) {
    auto request = parse_request(line);
    EXPECT_FALSE(request.ok()) << line;
    return request.ok() ? "" : request.error().message;
}

TEST(Protocol, ParsesEveryCommand) {
    EXPECT_TRUE(std::holds_alternative<request::Status>(parsed(R"({"v":1,"cmd":"status"})")));
    EXPECT_TRUE(std::holds_alternative<request::Reload>(parsed(R"({"cmd":"reload"})")));
    const auto scale = std::get<request::Scale>(parsed(R"({"cmd":"scale","workers":"+2"})"));
    EXPECT_EQ(scale.kind, request::Scale::Kind::up);
    EXPECT_EQ(scale.count, 2);
    EXPECT_EQ(std::get<request::Scale>(parsed(R"({"cmd":"scale","workers":6})")).kind, request::Scale::Kind::to);
    EXPECT_EQ(std::get<request::Scale>(parsed(R"({"cmd":"scale","workers":"-1"})")).kind, request::Scale::Kind::down);
    EXPECT_EQ(std::get<request::Restart>(parsed(R"({"cmd":"restart","slot":3})")).slot, 3);
    EXPECT_FALSE(std::get<request::Restart>(parsed(R"({"cmd":"restart","slot":"all"})")).slot.has_value());
    EXPECT_EQ(std::get<request::Stop>(parsed(R"({"cmd":"stop","timeout":"5s"})")).timeout, std::chrono::seconds(5));
    EXPECT_FALSE(std::get<request::Stop>(parsed(R"({"cmd":"stop"})")).timeout.has_value());
    const auto signal = std::get<request::Signal>(parsed(R"({"cmd":"signal","signal":"USR1","slot":"2"})"));
    EXPECT_EQ(signal.signal, SIGUSR1);
    EXPECT_EQ(signal.slot, 2);
    EXPECT_FALSE(std::get<request::Upgrade>(parsed(R"({"cmd":"upgrade"})")).binary.has_value());
    EXPECT_EQ(std::get<request::Upgrade>(parsed(R"({"cmd":"upgrade","binary":"/usr/bin/preforkctl"})")).binary,
              "/usr/bin/preforkctl");
}

TEST(Protocol, UnknownFieldsAreIgnoredForNewerClients) {
    EXPECT_TRUE(std::holds_alternative<request::Status>(parsed(R"({"cmd":"status","colour":true})")));
}

TEST(Protocol, RefusesGarbageWithAReasonAndNeverThrows) {
    EXPECT_THAT(refusal("hello"), HasSubstr("not JSON"));
    EXPECT_THAT(refusal("[1,2]"), HasSubstr("not a JSON object"));
    EXPECT_THAT(refusal(R"({"cmd":7})"), HasSubstr("\"cmd\""));
    EXPECT_THAT(refusal(R"({"cmd":"dance"})"), HasSubstr("unknown command \"dance\""));
    EXPECT_THAT(refusal(R"({"cmd":"scale"})"), HasSubstr("\"workers\""));
    EXPECT_THAT(refusal(R"({"cmd":"scale","workers":"many"})"), HasSubstr("not N, +N or -N"));
    EXPECT_THAT(refusal(R"({"cmd":"scale","workers":-3})"), HasSubstr("not N, +N or -N"));
    EXPECT_THAT(refusal(R"({"cmd":"scale","workers":99999999999})"), HasSubstr("not N, +N or -N"));
    EXPECT_THAT(refusal(R"({"cmd":"scale","workers":[1]})"), HasSubstr("not N, +N or -N"));
    EXPECT_THAT(refusal(R"({"cmd":"restart","slot":"x"})"), HasSubstr("slot number or \"all\""));
    EXPECT_THAT(refusal(R"({"cmd":"stop","timeout":"soon"})"), HasSubstr("invalid duration"));
    EXPECT_THAT(refusal(R"({"cmd":"signal","signal":"FOO"})"), HasSubstr("unknown signal"));
    EXPECT_THAT(refusal(R"({"cmd":"signal","signal":"HUP","slot":"all"})"), HasSubstr("not a slot number"));
    EXPECT_THAT(refusal(R"({"cmd":"upgrade","binary":""})"), HasSubstr("\"binary\" must be the path"));
    EXPECT_THAT(refusal(R"({"cmd":"upgrade","binary":7})"), HasSubstr("\"binary\" must be the path"));
    EXPECT_THAT(refusal(std::string(kMaxRequestBytes + 1, ' ')), HasSubstr("longer than"));
}

TEST(Protocol, RefusesANewerProtocolVersion) {
    EXPECT_THAT(refusal(R"({"v":2,"cmd":"status"})"), HasSubstr("protocol version 2 is not supported"));
    EXPECT_THAT(refusal(R"({"v":"1","cmd":"status"})"), HasSubstr("\"v\""));
}

TEST(Protocol, EncodedRequestsParseBackToTheSameRequest) {
    const std::vector<std::vector<std::string>> commands = {
        {"status"}, {"reload"}, {"scale", "4"}, {"scale", "+2"}, {"scale", "-1"}, {"restart", "all"},
        {"restart", "3"}, {"stop"}, {"stop", "--timeout", "2s"}, {"stop", "--timeout=250ms"},
        {"signal", "USR2"}, {"signal", "term", "1"}, {"signal", "40"}, {"upgrade"},
        {"upgrade", "--binary", "/opt/preforkctl"}, {"upgrade", "--binary=/opt/preforkctl"}};
    for (const auto& words : commands) {
        auto request = request_from_words(words);
        ASSERT_TRUE(request.ok()) << words.front() << ": " << request.error().message;
        auto again = parse_request(encode_request(*request));
        ASSERT_TRUE(again.ok()) << encode_request(*request) << ": " << again.error().message;
        EXPECT_EQ(encode_request(*again), encode_request(*request));
    }
}

TEST(Protocol, CommandWordsAreCheckedLikeOptions) {
    EXPECT_THAT(request_from_words({}).error().message, HasSubstr("a command is needed"));
    EXPECT_THAT(request_from_words({"scale"}).error().message, HasSubstr("usage: ctl scale N|+N|-N"));
    EXPECT_THAT(request_from_words({"status", "now"}).error().message, HasSubstr("usage: ctl status"));
    EXPECT_THAT(request_from_words({"stop", "--timeout"}).error().message, HasSubstr("usage: ctl stop"));
    EXPECT_THAT(request_from_words({"stop", "--timeout", "x"}).error().message, HasSubstr("invalid duration"));
    EXPECT_THAT(request_from_words({"frobnicate"}).error().message, HasSubstr("unknown command \"frobnicate\""));
    EXPECT_EQ(request_from_words({"signal", "HUP", "x"}).error().exit, ExitCode::usage);
    EXPECT_THAT(request_from_words({"upgrade", "--binary"}).error().message, HasSubstr("usage: ctl upgrade"));
    EXPECT_THAT(request_from_words({"upgrade", "now"}).error().message, HasSubstr("usage: ctl upgrade"));
}

}  // namespace
}  // namespace preforkctl::control
