// The upgrade state: what one image hands to the next survives the trip exactly, and anything this image
// cannot read for sure is refused with a reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "upgrade/state.hpp"

using namespace preforkctl::upgrade;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

State sample() {
    State state;
    state.from_version = "0.1.0";
    state.binary = "/usr/bin/preforkctl";
    state.taken_at_ns = 987654321;
    state.client_fd = 25;
    state.fd_soft_limit = 1024;
    state.workdir_fd = 9;
    state.uptime_ms = 123456;
    state.listeners = {{3, -1, "http", "127.0.0.1:8080", 8080}, {12, 1, "api", "[::1]:9090", 9090}};
    SlotState slot;
    slot.slot = 1;
    slot.phase = "running";
    slot.pid = 4242;
    slot.previous_pid = 4100;
    slot.draining = {4000, 4001};
    slot.ready = true;
    slot.started_ms_ago = 5000;
    slot.cpus = {1};
    slot.generation = 3;
    slot.restarts_total = 7;
    slot.restarts_by_reason = {{"crash", 5}, {"failure", 2}};
    slot.restarts_ms_ago = {40000, 2000};
    slot.next_delay_ms = 400;
    slot.restart_in_ms = 250;
    slot.failure_reason = "crash";
    slot.watchdog_interval_ms = 3000;
    slot.last_exit = ExitState{true, 9, 2000};
    // A line cut in the middle of a UTF-8 sequence, and bytes that are no text at all.
    slot.out = {20, 23, std::string("half a line \xc3", 13), true};
    slot.err = {21, 24, std::string("\x00\xff\n\x01", 4), false};
    slot.notify_fd = 22;
    state.slots = {slot, SlotState{}};
    state.control_fd = 5;
    state.control_path = "/run/preforkctl/web.sock";
    state.metrics_fd = 6;
    state.queued_stdout = "web.1 | queued\n";
    state.queued_stderr = std::string("\xfe", 1);
    state.generation = 3;
    state.counters = {{"rolling_restarts", 6}, {"scale_ups", 1}};
    state.inherited = {77, 78};
    state.output_readers = {78};
    state.announced_ready = true;
    state.first_worker_failure = 1;
    return state;
}

}  // namespace

TEST(UpgradeState, WhatIsEncodedDecodesToTheSameStateByteForByte) {
    const State state = sample();
    auto decoded = decode(encode(state));
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, state);
    EXPECT_EQ(decoded->slots[0].out.partial, std::string("half a line \xc3", 13));
    EXPECT_EQ(decoded->slots[0].err.partial.size(), 4u);
}

TEST(UpgradeState, AnotherVersionIsRefusedNotGuessedAt) {
    State newer = sample();
    newer.version = kStateVersion + 1;
    auto decoded = decode(encode(newer));
    ASSERT_FALSE(decoded);
    EXPECT_THAT(decoded.error().message, HasSubstr("has version 2, this preforkctl reads 1 only"));
}

TEST(UpgradeState, AMissingOrMistypedFieldIsRefusedByName) {
    std::string text = encode(sample());
    const std::string without = std::string(text).replace(text.find("\"metrics_fd\""), 12, "\"metrics_fx\"");
    auto missing = decode(without);
    ASSERT_FALSE(missing);
    EXPECT_THAT(missing.error().message, HasSubstr("metrics_fd is missing"));

    const std::size_t at = text.find("\"pid\":4242");
    ASSERT_NE(at, std::string::npos) << text;
    auto mistyped = decode(std::string(text).replace(at, 10, "\"pid\":\"x\""));
    ASSERT_FALSE(mistyped);
    EXPECT_THAT(mistyped.error().message, HasSubstr("pid is not a number"));

    const std::size_t hex = text.find("\"partial_hex\":\"");
    auto bad_hex = decode(std::string(text).replace(hex + 15, 2, "zz"));
    ASSERT_FALSE(bad_hex);
    EXPECT_THAT(bad_hex.error().message, HasSubstr("partial_hex is not hex"));

    EXPECT_FALSE(decode("not json"));
    EXPECT_FALSE(decode("[1, 2]"));
}

// Found with tests/fuzz/upgrade_state_fuzz: nlohmann-json casts any number to the field's type, which for 1e300
// into an int is undefined behaviour, and would read 25.7 as 25 and 4294967299 as fd 3.
TEST(UpgradeState, ANumberItsFieldCannotHoldExactlyIsRefusedByName) {
    const std::string text = encode(sample());
    const auto with = [&](const std::string& field, const std::string& value) {
        const std::size_t at = text.find(field);
        EXPECT_NE(at, std::string::npos) << field;
        const std::size_t end = text.find_first_of(",}", at);
        return decode(std::string(text).replace(at, end - at, field + value));
    };
    // Out of range for the field's type, or no integer at all.
    const std::vector<std::pair<std::string, std::string>> numbers = {
        {"\"client_fd\":", "1e300"},      {"\"client_fd\":", "25.7"},
        {"\"client_fd\":", "4294967299"}, {"\"version\":", "1.0"},
        {"\"fd_soft_limit\":", "-1"},     {"\"port\":", "70000"},
        {"\"restarts_total\":", "-7"},    {"\"taken_at_ns\":", "9223372036854775808"}};
    for (const auto& [field, value] : numbers) {
        auto decoded = with(field, value);
        ASSERT_FALSE(decoded) << field << value;
        EXPECT_THAT(decoded.error().message,
                    HasSubstr(field.substr(1, field.size() - 3) + " is not an integer in range"));
    }

    auto in_a_list = decode(std::string(text).replace(text.find("[4000,4001]"), 11, "[4000,1e300]"));
    ASSERT_FALSE(in_a_list);
    EXPECT_THAT(in_a_list.error().message, HasSubstr("draining is not an integer in range"));
    auto in_a_map = decode(std::string(text).replace(text.find("\"crash\":5"), 9, "\"crash\":-5"));
    ASSERT_FALSE(in_a_map);
    EXPECT_THAT(in_a_map.error().message, HasSubstr("restarts_by_reason is not an integer in range"));

    auto largest = with("\"taken_at_ns\":", "9223372036854775807");
    ASSERT_TRUE(largest) << largest.error().message;
    EXPECT_EQ(largest->taken_at_ns, 9223372036854775807);
}

TEST(UpgradeState, TheDescriptorsToKeepAreEveryOneTheStateNamesOnce) {
    EXPECT_THAT(descriptors(sample()), ElementsAre(3, 5, 6, 9, 12, 20, 21, 22, 23, 24, 25));
    EXPECT_TRUE(descriptors(State{}).empty());
}
