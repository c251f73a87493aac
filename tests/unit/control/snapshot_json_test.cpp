#include "control/snapshot_json.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace preforkctl;
using namespace preforkctl::control;
using nlohmann::json;

namespace {

Snapshot busy_snapshot() {
    Snapshot snapshot;
    snapshot.name = "web";
    snapshot.version = "0.3.0";
    snapshot.pid = 4100;
    snapshot.uptime_seconds = 3725.5;
    snapshot.command = "gunicorn app:wsgi --bind fd://3";
    snapshot.workers = 2;
    snapshot.generation = 3;
    snapshot.rolling = true;
    snapshot.stopping = false;

    SlotStatus ready;
    ready.slot = 0;
    ready.pid = 4201;
    ready.cpus = "0";
    ready.state = "ready";
    ready.ready = true;
    ready.uptime_seconds = 185.25;
    ready.restarts_in_window = 2;
    ready.restarts_total = 7;
    ready.restarts_by_reason = {{"crash", 5}, {"rolling", 2}};
    ready.last_exit = LastExit{true, 9, "SIGKILL", 5.5};
    ready.usage = TreeUsage{52428800, 12.75, 3};
    ready.cpu_percent = 6.9;
    ready.generation = 3;
    ready.draining = {4150, 4151};

    SlotStatus backoff;
    backoff.slot = 1;
    backoff.state = "backoff";
    backoff.restarts_total = 18446744073709551615u;  // the whole range of a uint64 survives
    snapshot.slots = {ready, backoff};

    snapshot.listeners = {ListenerStatus{"http", "0.0.0.0:8080", "shared", -1, 3u, 128u},
                          ListenerStatus{"admin", "unix:/run/web.sock", "shared", -1, std::nullopt, std::nullopt}};
    snapshot.out = StreamCounters{1000, 65536, 0};
    snapshot.err = StreamCounters{10, 700, 4};
    snapshot.rolling_restarts = 4;
    snapshot.scale_ups = 1;
    snapshot.scale_downs = 2;
    snapshot.scale_up_reasons = {{"load", 1}};
    snapshot.scale_down_reasons = {{"idle", 1}, {"request", 1}};
    snapshot.elastic = ElasticStatus{1, 8};
    snapshot.recycles = {{"rss", 3}, {"lifetime", 1}};
    snapshot.watchdog_timeouts = 2;
    return snapshot;
}

void expect_same(const Snapshot& a, const Snapshot& b) {
    // Compared through the JSON: every field is in it, and a difference shows as readable text.
    EXPECT_EQ(snapshot_to_json(a).dump(2), snapshot_to_json(b).dump(2));
}

}  // namespace

TEST(SnapshotJson, RoundTripsEveryField) {
    const Snapshot original = busy_snapshot();
    const auto back = snapshot_from_json(snapshot_to_json(original));
    ASSERT_TRUE(back) << back.error().message;
    expect_same(*back, original);
    // A few directly, so that a field both directions forgot would still be caught.
    EXPECT_EQ(back->slots.at(0).last_exit->text, "SIGKILL");
    EXPECT_EQ(back->slots.at(0).usage->rss_bytes, 52428800u);
    EXPECT_EQ(back->slots.at(0).draining, (std::vector<int>{4150, 4151}));
    EXPECT_EQ(back->slots.at(1).restarts_total, 18446744073709551615u);
    EXPECT_EQ(back->listeners.at(0).queue, 3u);
    EXPECT_EQ(back->err.dropped_lines, 4u);
    EXPECT_TRUE(back->rolling);
    EXPECT_EQ(back->scale_down_reasons.at("idle"), 1u);
    EXPECT_EQ(back->elastic->max, 8);
    EXPECT_EQ(back->recycles.at("rss"), 3u);
    EXPECT_EQ(back->watchdog_timeouts, 2u);
}

TEST(SnapshotJson, RoundTripsThroughText) {
    const Snapshot original = busy_snapshot();
    const auto back = snapshot_from_json(json::parse(snapshot_to_json(original).dump()));
    ASSERT_TRUE(back) << back.error().message;
    expect_same(*back, original);
}

TEST(SnapshotJson, UsesSnakeCaseMemberNamesAndNullForWhatIsAbsent) {
    const json encoded = snapshot_to_json(busy_snapshot());
    EXPECT_EQ(encoded.at("uptime_seconds"), 3725.5);
    EXPECT_EQ(encoded.at("out"), (json{{"lines", 1000}, {"bytes", 65536}, {"dropped_lines", 0}}));
    const json& slot = encoded.at("slots").at(0);
    EXPECT_EQ(slot.at("restarts_in_window"), 2);
    EXPECT_EQ(slot.at("restarts_by_reason"), (json{{"crash", 5}, {"rolling", 2}}));
    EXPECT_EQ(slot.at("last_exit"),
              (json{{"signaled", true}, {"value", 9}, {"text", "SIGKILL"}, {"seconds_ago", 5.5}}));
    EXPECT_EQ(slot.at("usage"), (json{{"rss_bytes", 52428800}, {"cpu_seconds", 12.75}, {"processes", 3}}));
    const json& idle = encoded.at("slots").at(1);
    EXPECT_TRUE(idle.at("last_exit").is_null());
    EXPECT_TRUE(idle.at("usage").is_null());
    EXPECT_TRUE(encoded.at("listeners").at(1).at("queue").is_null());
    EXPECT_TRUE(encoded.at("listeners").at(1).at("backlog").is_null());
    EXPECT_EQ(encoded.at("listeners").at(0).at("backlog"), 128);
}

TEST(SnapshotJson, MissingAndNullFieldsTakeTheirDefaultsAndUnknownOnesAreIgnored) {
    const json from_other_version = {
        {"name", "web"},
        {"pid", nullptr},
        {"added_later", {{"anything", 1}}},
        {"slots", {{{"slot", 2}, {"state", "ready"}, {"last_exit", nullptr}, {"future", "x"}}}},
        {"listeners", {{{"name", "http"}}}},
        {"out", {{"lines", 5}}},
    };
    const auto read = snapshot_from_json(from_other_version);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->name, "web");
    EXPECT_EQ(read->pid, 0);
    EXPECT_EQ(read->workers, 0);
    ASSERT_EQ(read->slots.size(), 1u);
    EXPECT_EQ(read->slots[0].slot, 2);
    EXPECT_EQ(read->slots[0].state, "ready");
    EXPECT_FALSE(read->slots[0].last_exit);
    EXPECT_FALSE(read->slots[0].usage);
    EXPECT_TRUE(read->slots[0].draining.empty());
    ASSERT_EQ(read->listeners.size(), 1u);
    EXPECT_EQ(read->listeners[0].slot, -1);
    EXPECT_FALSE(read->listeners[0].queue);
    EXPECT_EQ(read->out.lines, 5u);
    EXPECT_EQ(read->out.bytes, 0u);
    EXPECT_EQ(read->err.lines, 0u);

    const auto empty = snapshot_from_json(json::object());
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->slots.empty());
}

TEST(SnapshotJson, AWrongTypeIsAnErrorNamingTheField) {
    const auto error_for = [](const json& encoded) {
        const auto read = snapshot_from_json(encoded);
        return read ? std::string("(read)") : read.error().message;
    };
    EXPECT_EQ(error_for(json::array()), "the status must be a JSON object");
    EXPECT_EQ(error_for(json("status")), "the status must be a JSON object");
    EXPECT_EQ(error_for({{"name", 3}}), "\"name\" must be a string");
    EXPECT_EQ(error_for({{"pid", "4100"}}), "\"pid\" must be an integer");
    EXPECT_EQ(error_for({{"pid", 4100.5}}), "\"pid\" must be an integer");
    EXPECT_EQ(error_for({{"pid", 99999999999}}), "\"pid\" must be an integer in range");
    EXPECT_EQ(error_for({{"rolling", 1}}), "\"rolling\" must be true or false");
    EXPECT_EQ(error_for({{"uptime_seconds", "1s"}}), "\"uptime_seconds\" must be a number");
    EXPECT_EQ(error_for({{"scale_ups", -1}}), "\"scale_ups\" must be a non-negative integer in range");
    EXPECT_EQ(error_for({{"slots", {{"slot", 1}}}}), "\"slots\" must be an array");
    EXPECT_EQ(error_for({{"slots", {1}}}), "\"slots[0]\" must be an object");
    EXPECT_EQ(error_for({{"slots", {json::object(), {{"pid", true}}}}}), "\"slots[1].pid\" must be an integer");
    EXPECT_EQ(error_for({{"slots", {{{"last_exit", {{"text", 9}}}}}}}), "\"slots[0].last_exit.text\" must be a string");
    EXPECT_EQ(error_for({{"slots", {{{"usage", 5}}}}}), "\"slots[0].usage\" must be an object");
    EXPECT_EQ(error_for({{"slots", {{{"restarts_by_reason", {{"crash", "many"}}}}}}}),
              "\"slots[0].restarts_by_reason.crash\" must be a non-negative integer");
    EXPECT_EQ(error_for({{"slots", {{{"draining", {1, "two"}}}}}}), "\"slots[0].draining[1]\" must be an integer");
    EXPECT_EQ(error_for({{"listeners", {{{"queue", 4294967296}}}}}),
              "\"listeners[0].queue\" must be a non-negative integer in range");
    EXPECT_EQ(error_for({{"err", {{"bytes", 1.5}}}}), "\"err.bytes\" must be a non-negative integer");
    EXPECT_EQ(error_for({{"out", "none"}}), "\"out\" must be an object");
}

TEST(SnapshotJson, AcceptsAWholeNumberForADoubleField) {
    const auto read = snapshot_from_json({{"uptime_seconds", 60}, {"slots", {{{"cpu_percent", 0}}}}});
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_DOUBLE_EQ(read->uptime_seconds, 60.0);
}
