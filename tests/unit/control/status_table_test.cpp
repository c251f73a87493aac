#include "control/status_table.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>
#include <vector>

using namespace preforkctl::control;

namespace {

SlotStatus slot(int number, int pid, std::string state) {
    SlotStatus status;
    status.slot = number;
    status.pid = pid;
    status.state = std::move(state);
    status.ready = status.state == "ready";
    return status;
}

Snapshot two_slots_and_two_listeners() {
    Snapshot snapshot;
    snapshot.name = "web";
    snapshot.pid = 4100;
    snapshot.uptime_seconds = 3725;
    snapshot.workers = 2;
    snapshot.generation = 3;

    SlotStatus ready = slot(0, 4201, "ready");
    ready.cpus = "0";
    ready.uptime_seconds = 185;
    ready.restarts_in_window = 2;
    ready.restarts_total = 7;
    ready.last_exit = LastExit{false, 3, "exit 3", 150};
    ready.usage = TreeUsage{52428800, 12.75, 3};
    ready.cpu_percent = 6.94;
    ready.generation = 3;
    ready.draining = {4150};

    SlotStatus backoff = slot(1, 0, "backoff");
    backoff.cpus = "1";
    backoff.restarts_in_window = 5;
    backoff.restarts_total = 12;
    backoff.last_exit = LastExit{true, 9, "SIGKILL", 5.9};
    snapshot.slots = {ready, backoff};

    snapshot.listeners = {
        ListenerStatus{"http", "0.0.0.0:8080", "shared", -1, 3u, 128u},
        ListenerStatus{"admin-socket", "unix:/run/web.sock", "shared", -1, std::nullopt, std::nullopt}};
    return snapshot;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
}

std::string without_sgr(const std::string& text) {
    return std::regex_replace(text, std::regex("\x1b\\[[0-9;]*m"), "");
}

// The cells of a table line: runs of text separated by two or more spaces.
std::vector<std::string> cells_of(const std::string& line) {
    std::vector<std::string> cells;
    const std::regex gap(" {2,}");
    for (auto it = std::sregex_token_iterator(line.begin(), line.end(), gap, -1); it != std::sregex_token_iterator();
         ++it) {
        cells.push_back(*it);
    }
    return cells;
}

}  // namespace

TEST(StatusTable, StartsWithALineAboutPreforkctlItself) {
    Snapshot snapshot = two_slots_and_two_listeners();
    EXPECT_EQ(lines_of(render_status_table(snapshot, false)).at(0),
              "web: pid 4100, workers 2 (1 ready), generation 3, up 1h02m");
    snapshot.rolling = true;
    snapshot.stopping = true;
    snapshot.name.clear();
    EXPECT_EQ(lines_of(render_status_table(snapshot, false)).at(0),
              "preforkctl: pid 4100, workers 2 (1 ready), generation 3, up 1h02m, rolling restart, stopping");
}

TEST(StatusTable, ShowsTheElasticBoundsAndTheEventsSinceTheStartUnderTheFirstLine) {
    Snapshot snapshot = two_slots_and_two_listeners();
    snapshot.elastic = ElasticStatus{1, 8};
    snapshot.scale_ups = 3;
    snapshot.scale_up_reasons = {{"load", 2}, {"request", 1}};
    snapshot.recycles = {{"lifetime", 1}, {"rss", 2}};
    snapshot.watchdog_timeouts = 1;
    const auto lines = lines_of(render_status_table(snapshot, false));
    ASSERT_GE(lines.size(), 3u);
    EXPECT_EQ(lines[0], "web: pid 4100, workers 2 of 1..8 (1 ready), generation 3, up 1h02m");
    EXPECT_EQ(lines[1], "scaled up 3 (load 2, request 1), recycled 3 (lifetime 1, rss 2), watchdog timeouts 1");
    EXPECT_EQ(lines[2], "");
}

TEST(StatusTable, ShowsEachSlotWithItsUnitsAndDashesForWhatIsUnknown) {
    const auto lines = lines_of(render_status_table(two_slots_and_two_listeners(), false));
    ASSERT_GE(lines.size(), 6u);
    EXPECT_EQ(lines[1], "");
    EXPECT_EQ(cells_of(lines[2]), (std::vector<std::string>{"SLOT", "PID", "CPU", "STATE", "UPTIME", "RESTARTS",
                                                            "LAST EXIT", "RSS", "CPU%", "GEN"}));
    EXPECT_EQ(cells_of(lines[3]), (std::vector<std::string>{"0", "4201", "0", "ready", "3m05s", "2/7", "exit 3, 2m ago",
                                                            "50.0 MiB", "6.9", "3"}));
    EXPECT_EQ(lines[4], "  draining pid 4150");
    EXPECT_EQ(cells_of(lines[5]),
              (std::vector<std::string>{"1", "-", "1", "backoff", "-", "5/12", "SIGKILL, 5s ago", "-", "-", "-"}));
}

TEST(StatusTable, ListsListenersWithTheirQueueAndBacklogOrDashes) {
    const auto lines = lines_of(render_status_table(two_slots_and_two_listeners(), false));
    ASSERT_EQ(lines.size(), 10u);
    EXPECT_EQ(lines[6], "");
    EXPECT_EQ(cells_of(lines[7]), (std::vector<std::string>{"NAME", "ADDRESS", "MODE", "SLOT", "QUEUE", "BACKLOG"}));
    EXPECT_EQ(cells_of(lines[8]), (std::vector<std::string>{"http", "0.0.0.0:8080", "shared", "-", "3", "128"}));
    EXPECT_EQ(cells_of(lines[9]),
              (std::vector<std::string>{"admin-socket", "unix:/run/web.sock", "shared", "-", "-", "-"}));
}

TEST(StatusTable, NamesTheSlotThatOwnsAReuseportListener) {
    Snapshot snapshot;
    snapshot.listeners = {ListenerStatus{"http", "0.0.0.0:8080", "reuseport", 1, 0u, 4096u}};
    const auto lines = lines_of(render_status_table(snapshot, false));
    EXPECT_EQ(lines.back(), "http  0.0.0.0:8080  reuseport  1     0      4096");
}

TEST(StatusTable, AlignsEachColumnToItsWidestCell) {
    const std::string text = render_status_table(two_slots_and_two_listeners(), false);
    EXPECT_NE(text.find("SLOT  PID   CPU  STATE    UPTIME  RESTARTS  LAST EXIT        RSS       CPU%  GEN\n"
                        "0     4201  0    ready    3m05s   2/7       exit 3, 2m ago   50.0 MiB  6.9   3\n"
                        "  draining pid 4150\n"
                        "1     -     1    backoff  -       5/12      SIGKILL, 5s ago  -         -     -\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("NAME          ADDRESS             MODE    SLOT  QUEUE  BACKLOG\n"
                        "http          0.0.0.0:8080        shared  -     3      128\n"
                        "admin-socket  unix:/run/web.sock  shared  -     -      -\n"),
              std::string::npos)
        << text;
}

TEST(StatusTable, AlignsColumnsWithoutCountingColourCodes) {
    const Snapshot snapshot = two_slots_and_two_listeners();
    const std::string coloured = render_status_table(snapshot, true);
    EXPECT_NE(coloured, render_status_table(snapshot, false));
    EXPECT_EQ(without_sgr(coloured), render_status_table(snapshot, false));
}

TEST(StatusTable, ColoursOnlyTheStateCellAndOnlyWhenAsked) {
    Snapshot snapshot;
    snapshot.slots = {slot(0, 10, "ready"),  slot(1, 11, "starting"), slot(2, 12, "draining"), slot(3, 13, "stopping"),
                      slot(4, 0, "backoff"), slot(5, 0, "parked"),    slot(6, 0, "stopped"),   slot(7, 0, "mystery")};
    const std::string plain = render_status_table(snapshot, false);
    EXPECT_EQ(plain.find('\x1b'), std::string::npos);

    const auto lines = lines_of(render_status_table(snapshot, true));
    const auto state_cell = [&](std::size_t slot_number) { return cells_of(lines.at(3 + slot_number)).at(3); };
    EXPECT_EQ(state_cell(0), "\x1b[32mready\x1b[0m");
    EXPECT_EQ(state_cell(1), "\x1b[33mstarting\x1b[0m");
    EXPECT_EQ(state_cell(2), "\x1b[33mdraining\x1b[0m");
    EXPECT_EQ(state_cell(3), "\x1b[33mstopping\x1b[0m");
    EXPECT_EQ(state_cell(4), "\x1b[31mbackoff\x1b[0m");
    EXPECT_EQ(state_cell(5), "\x1b[31mparked\x1b[0m");
    EXPECT_EQ(state_cell(6), "\x1b[2mstopped\x1b[0m");
    EXPECT_EQ(state_cell(7), "mystery");
    EXPECT_EQ(std::count(lines.at(2).begin(), lines.at(2).end(), '\x1b'), 0);  // the header row
}

TEST(StatusTable, EndsNoLineWithSpaces) {
    for (const bool color : {false, true}) {
        for (const std::string& line : lines_of(render_status_table(two_slots_and_two_listeners(), color))) {
            EXPECT_TRUE(line.empty() || line.back() != ' ') << '"' << line << '"';
        }
    }
}

TEST(StatusTable, CountsCharactersNotBytesOfUtf8Names) {
    Snapshot snapshot;
    snapshot.listeners = {ListenerStatus{"caf\xc3\xa9", "0.0.0.0:80", "shared", -1, 0u, 1u},
                          ListenerStatus{"tea", "0.0.0.0:81", "shared", -1, 0u, 1u}};
    const auto lines = lines_of(render_status_table(snapshot, false));
    EXPECT_EQ(lines.at(lines.size() - 2), "caf\xc3\xa9  0.0.0.0:80  shared  -     0      1");
    EXPECT_EQ(lines.back(), "tea   0.0.0.0:81  shared  -     0      1");
}

TEST(StatusTable, HasOnlyTheHeaderRowWithoutSlotsAndNoListenerTableWithoutListeners) {
    Snapshot snapshot;
    snapshot.pid = 1;
    EXPECT_EQ(render_status_table(snapshot, false),
              "preforkctl: pid 1, workers 0 (0 ready), generation 0, up 0s\n"
              "\n"
              "SLOT  PID  CPU  STATE  UPTIME  RESTARTS  LAST EXIT  RSS  CPU%  GEN\n");
}

TEST(StatusTable, NamesAnExitWithoutTextByItsCodeOrSignalNumber) {
    Snapshot snapshot;
    SlotStatus exited = slot(0, 0, "backoff");
    exited.last_exit = LastExit{false, 2, "", 90000};
    SlotStatus killed = slot(1, 0, "backoff");
    killed.last_exit = LastExit{true, 64, "", -1};
    snapshot.slots = {exited, killed};
    const auto lines = lines_of(render_status_table(snapshot, false));
    EXPECT_EQ(cells_of(lines.at(3)).at(6), "exit 2, 1d ago");
    EXPECT_EQ(cells_of(lines.at(4)).at(6), "signal 64");
}

TEST(StatusTableUnits, UptimeShowsItsTwoLargestUnits) {
    EXPECT_EQ(format_uptime(0), "0s");
    EXPECT_EQ(format_uptime(0.9), "0s");
    EXPECT_EQ(format_uptime(45), "45s");
    EXPECT_EQ(format_uptime(59.99), "59s");
    EXPECT_EQ(format_uptime(60), "1m00s");
    EXPECT_EQ(format_uptime(185), "3m05s");
    EXPECT_EQ(format_uptime(3599), "59m59s");
    EXPECT_EQ(format_uptime(3600), "1h00m");
    EXPECT_EQ(format_uptime(2 * 3600 + 3 * 60 + 59), "2h03m");
    EXPECT_EQ(format_uptime(86399), "23h59m");
    EXPECT_EQ(format_uptime(4 * 86400 + 2 * 3600 + 1800), "4d02h");
    EXPECT_EQ(format_uptime(400 * 86400), "400d00h");
    EXPECT_EQ(format_uptime(-1), "-");
    EXPECT_EQ(format_uptime(std::nan("")), "-");
    EXPECT_EQ(format_uptime(1e300), "11574074d01h");  // capped, not undefined
}

TEST(StatusTableUnits, AgeShowsItsLargestUnit) {
    EXPECT_EQ(format_age(5.9), "5s");
    EXPECT_EQ(format_age(150), "2m");
    EXPECT_EQ(format_age(3 * 3600 + 59 * 60), "3h");
    EXPECT_EQ(format_age(4 * 86400 + 5), "4d");
    EXPECT_EQ(format_age(-0.5), "-");
}

TEST(StatusTableUnits, SizesAreInBinaryUnitsWithOneDecimal) {
    EXPECT_EQ(format_bytes(0), "0.0 KiB");
    EXPECT_EQ(format_bytes(512), "0.5 KiB");
    EXPECT_EQ(format_bytes(1536), "1.5 KiB");
    EXPECT_EQ(format_bytes(1023 * 1024), "1023.0 KiB");
    EXPECT_EQ(format_bytes(1048575), "1.0 MiB");  // not "1024.0 KiB"
    EXPECT_EQ(format_bytes(52428800), "50.0 MiB");
    EXPECT_EQ(format_bytes(12900000), "12.3 MiB");
    EXPECT_EQ(format_bytes(3758096384), "3.5 GiB");
    EXPECT_EQ(format_bytes(5ULL << 40), "5120.0 GiB");
}
