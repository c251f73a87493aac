// The control plane (SPEC §11): `preforkctl ctl` against a running preforkctl, its control socket's safety
// (peer uid, stale and live sockets, --control none) and what garbage, huge and silent clients get.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;
using nlohmann::json;

namespace {

// A connection to a control socket that speaks the protocol by hand.
class RawClient {
public:
    explicit RawClient(const std::string& path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
        connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    }
    ~RawClient() { ::close(fd_); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    [[nodiscard]] bool connected() const { return connected_; }
    /// Sends `data` as far as the peer takes it (MSG_NOSIGNAL: a peer that closed gives EPIPE, not a signal).
    void send(const std::string& data) const {
        std::size_t done = 0;
        while (done < data.size()) {
            const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
            if (n <= 0) return;
            done += static_cast<std::size_t>(n);
        }
    }
    /// The next line (without newline), or "" at EOF or after `deadline`.
    std::string read_line(std::chrono::milliseconds deadline = 10s) {
        const auto until = std::chrono::steady_clock::now() + deadline;
        for (;;) {
            if (const auto newline = buffer_.find('\n'); newline != std::string::npos) {
                std::string line = buffer_.substr(0, newline);
                buffer_.erase(0, newline + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return "";
            pollfd ready{fd_, POLLIN, 0};
            if (::poll(&ready, 1, static_cast<int>(left.count())) <= 0) continue;
            char chunk[65536];
            const ssize_t n = ::read(fd_, chunk, sizeof chunk);
            if (n <= 0) return "";
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    /// True once the peer has closed the connection (within `deadline`).
    bool closed_within(std::chrono::milliseconds deadline) {
        return wait_until([&] {
            pollfd ready{fd_, POLLIN, 0};
            if (::poll(&ready, 1, 0) <= 0) return false;
            char chunk[4096];
            return ::read(fd_, chunk, sizeof chunk) <= 0;
        }, deadline);
    }

private:
    int fd_ = -1;
    bool connected_ = false;
    std::string buffer_;
};

// `ctl status --json` as a document; a discarded value when ctl fails (polls wait for the socket with it).
json try_status(const std::vector<std::string>& where) {
    std::vector<std::string> args = where;
    args.insert(args.end(), {"status", "--json"});
    const CtlResult result = ctl(args);
    return result.status == 0 ? json::parse(result.out, nullptr, false) : json(json::value_t::discarded);
}

// The same where ctl must succeed.
json status_json(const std::vector<std::string>& where) {
    json status = try_status(where);
    EXPECT_TRUE(status.is_object()) << "ctl status --json failed";
    return status;
}

std::set<std::string> pids_of(const std::vector<Report>& reports) {
    std::set<std::string> pids;
    for (const Report& report : reports) pids.insert(report.at("pid"));
    return pids;
}

std::set<std::string> status_pids(const json& status) {
    std::set<std::string> pids;
    for (const json& slot : status["slots"]) {
        if (slot["pid"].get<int>() > 0) pids.insert(std::to_string(slot["pid"].get<int>()));
    }
    return pids;
}

bool all_ready(const json& status, std::size_t count) {
    if (!status.is_object() || status["slots"].size() != count) return false;
    for (const json& slot : status["slots"]) {
        if (slot["state"] != "ready") return false;
    }
    return true;
}

}  // namespace

TEST(Control, StatusShowsEverySlotWithItsWorkerAndTheListener) {
    TempDir dir;
    Process run(preforkctl({"--name", "web", "-n", "3", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}),
                {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 3);
    ASSERT_EQ(reports.size(), 3u) << run.err();
    json status;
    ASSERT_TRUE(wait_until([&] { return all_ready(status = try_status({"--name", "web"}), 3); })) << status.dump();
    EXPECT_EQ(status_pids(status), pids_of(reports));
    EXPECT_EQ(status["name"], "web");
    EXPECT_EQ(status["pid"], run.pid());
    ASSERT_EQ(status["listeners"].size(), 1u);
    EXPECT_EQ(status["listeners"][0]["address"], "127.0.0.1:" + std::to_string(listening_port(run.err())));
    EXPECT_EQ(status["listeners"][0]["queue"], 0);
    EXPECT_EQ(status["listeners"][0]["backlog"], 4096);
    for (const json& slot : status["slots"]) {
        ASSERT_TRUE(slot["usage"].is_object()) << slot.dump();
        EXPECT_GT(slot["usage"]["rss_bytes"].get<std::uint64_t>(), 0u);
        EXPECT_EQ(slot["usage"]["processes"], 1);
    }
    // The table a person reads: one row per slot, with its pid.
    const CtlResult table = ctl({"--name", "web", "status"});
    ASSERT_EQ(table.status, 0) << table.err;
    for (const Report& report : reports) EXPECT_THAT(table.out, HasSubstr(report.at("pid"))) << table.out;
    EXPECT_THAT(table.out, HasSubstr("ready"));
    EXPECT_EQ(table.out.find("\x1b["), std::string::npos) << "no colour when stdout is not a terminal";
}

TEST(Control, WithOnePreforkctlRunningNoNameIsNeeded) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    const CtlResult result = ctl({"status", "--json"});
    EXPECT_EQ(result.status, 0) << result.err;
    EXPECT_THAT(result.out, HasSubstr("\"probe_worker\""));
}

TEST(Control, ScaleAddsAndRemovesSlotsAndRefusesZero) {
    TempDir dir;
    Process run(preforkctl({"--name", "s", "-n", "2", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 2).size(), 2u) << run.err();
    CtlResult up = ctl({"--name", "s", "scale", "+2"});
    EXPECT_EQ(up.status, 0) << up.err;
    EXPECT_THAT(up.out, HasSubstr("scaling from 2 to 4 workers"));
    ASSERT_EQ(wait_for_reports(dir.path(), 4).size(), 4u) << run.err();
    CtlResult down = ctl({"--name", "s", "scale", "1"});
    EXPECT_EQ(down.status, 0) << down.err;
    EXPECT_THAT(down.out, HasSubstr("scaling from 4 to 1 worker"));
    json status;
    EXPECT_TRUE(wait_until([&] { return all_ready(status = try_status({"--name", "s"}), 1); })) << status.dump();
    const CtlResult zero = ctl({"--name", "s", "scale", "-1"});
    EXPECT_EQ(zero.status, 1);
    EXPECT_THAT(zero.err, HasSubstr("preforkctl: error: one worker is the minimum"));
    EXPECT_EQ(status_json({"--name", "s"})["scale_ups"], 2);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Control, RestartOfOneSlotAnswersWhenItsNewWorkerIsReady) {
    TempDir dir;
    Process run(preforkctl({"--name", "r", "-n", "2", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 2).size(), 2u) << run.err();
    json before;
    ASSERT_TRUE(wait_until([&] { return all_ready(before = try_status({"--name", "r"}), 2); }));
    const CtlResult restart = ctl({"--name", "r", "restart", "1"});
    EXPECT_EQ(restart.status, 0) << restart.err;
    EXPECT_THAT(restart.out, HasSubstr("rolling restart done (generation 1)"));
    const json after = status_json({"--name", "r"});
    EXPECT_EQ(after["slots"][0]["pid"], before["slots"][0]["pid"]) << "slot 0 was not to be touched";
    EXPECT_NE(after["slots"][1]["pid"], before["slots"][1]["pid"]);
    EXPECT_EQ(after["slots"][1]["generation"], 1);
    EXPECT_EQ(after["slots"][1]["state"], "ready");
    const int replaced = before["slots"][1]["pid"].get<int>();
    EXPECT_TRUE(wait_until([&] { return !is_alive(replaced); })) << "the replaced worker is stopped";
    const CtlResult unknown = ctl({"--name", "r", "restart", "7"});
    EXPECT_EQ(unknown.status, 1);
    EXPECT_THAT(unknown.err, HasSubstr("there is no slot 7"));
}

TEST(Control, ReloadReplacesEveryWorkerLikeHup) {
    TempDir dir;
    Process run(preforkctl({"--name", "h", "-n", "2", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    const auto first = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(first.size(), 2u) << run.err();
    const CtlResult reload = ctl({"--name", "h", "reload"});
    EXPECT_EQ(reload.status, 0) << reload.err;
    EXPECT_THAT(reload.out, HasSubstr("rolling restart done (generation 1)"));
    const json status = status_json({"--name", "h"});
    for (const std::string& pid : status_pids(status)) EXPECT_EQ(pids_of(first).count(pid), 0u) << pid;
    EXPECT_EQ(status["generation"], 1);
    EXPECT_EQ(status["rolling_restarts"], 2);
    EXPECT_THAT(run.err(), HasSubstr("ctl reload (pid "));
}

TEST(Control, StopAnswersThenWaitsUntilPreforkctlHasExited) {
    TempDir dir;
    Process run(preforkctl({"--name", "t", "-n", "2", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    const CtlResult stop = ctl({"--name", "t", "stop"});
    EXPECT_EQ(stop.status, 0) << stop.err;
    EXPECT_THAT(stop.out, HasSubstr("stopping 2 workers (SIGTERM, SIGKILL after 10s)"));
    EXPECT_THAT(stop.out, HasSubstr("stopped"));
    EXPECT_EQ(run.wait(5s), 0) << run.err();
    for (const Report& report : reports) EXPECT_FALSE(is_alive(std::stoi(report.at("pid"))));
    EXPECT_FALSE(std::filesystem::exists(control_socket("t"))) << "the socket file goes with preforkctl";
}

TEST(Control, StopTimeoutGivenToCtlReplacesStopTimeout) {
    TempDir dir;
    Process run(preforkctl({"--name", "k", "-n", "1", "--stop-timeout", "1m", "--", PROBE_WORKER_BIN, "--ignore-term"}),
                {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    const CtlResult stop = ctl({"--name", "k", "stop", "--timeout", "200ms"});
    EXPECT_EQ(stop.status, 0) << stop.err;
    EXPECT_EQ(run.wait(10s), 0) << run.err();
    EXPECT_THAT(run.err(), HasSubstr("stop timeout of 200ms passed"));
}

TEST(Control, ASecondStopKillsAtOnceLikeASecondTerm) {
    TempDir dir;
    Process run(preforkctl({"--name", "kk", "-n", "1", "--stop-timeout", "1m", "--", PROBE_WORKER_BIN, "--ignore-term"}),
                {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    EXPECT_EQ(ctl({"--name", "kk", "--no-wait", "stop"}).status, 0);
    const CtlResult again = ctl({"--name", "kk", "stop"});
    EXPECT_EQ(again.status, 0) << again.err;
    EXPECT_THAT(again.out, HasSubstr("already stopping: killing every worker now"));
    EXPECT_EQ(run.wait(10s), 0) << run.err();
}

TEST(Control, RestartsAreCountedByReasonAndTheLastExitIsShown) {
    Process run(preforkctl({"--name", "why", "-n", "1", "--ready", "notify", "--ready-timeout", "300ms", "--backoff",
                            "10ms..10ms", "--", "/bin/sleep", "100"}));
    json status;
    ASSERT_TRUE(wait_until([&] {
        status = try_status({"--name", "why"});
        return status.is_object() && status["slots"][0]["restarts_by_reason"].value("ready_timeout", 0) >= 1;
    })) << status.dump() << run.err();
    EXPECT_EQ(status["slots"][0]["restarts_by_reason"].value("crash", 0), 0) << "the SIGKILL was the timeout's";
    EXPECT_EQ(status["slots"][0]["last_exit"]["text"], "SIGKILL");
    EXPECT_GE(status["slots"][0]["restarts_total"].get<int>(), 1);
}

TEST(Control, SignalReachesOnlyTheSlotNamed) {
    Process run(preforkctl({"--name", "g", "-n", "2", "--", PROBE_WORKER_BIN, "--echo-signals"}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "echoing signals").size() == 2; })) << run.out();
    const CtlResult one = ctl({"--name", "g", "signal", "USR2", "1"});
    EXPECT_EQ(one.status, 0) << one.err;
    EXPECT_THAT(one.out, HasSubstr("sent SIGUSR2 to 1 worker"));
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.out(), "USR2").empty(); })) << run.out();
    const auto lines = lines_with(run.out(), "USR2");
    ASSERT_EQ(lines.size(), 1u) << run.out();
    EXPECT_THAT(lines[0], HasSubstr("g.1 |"));
    const CtlResult all = ctl({"--name", "g", "signal", "WINCH"});
    EXPECT_THAT(all.out, HasSubstr("sent SIGWINCH to 2 workers"));
    EXPECT_EQ(ctl({"--name", "g", "signal", "NOPE"}).status, 2);
}

TEST(Control, AnotherUidIsRefusedEvenWhenTheSocketFileIsOpenedUp) {
    TempDir dir;
    const std::string path = dir.path() + "/ctl.sock";
    Process run(preforkctl({"--control", path, "-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    const std::vector<std::string> as_nobody = {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
    // As created, nobody else may even connect.
    ::chmod(dir.path().c_str(), 0755);
    const CtlResult blocked = ctl({"--socket", path, "status"}, as_nobody);
    EXPECT_EQ(blocked.status, 4) << blocked.err;
    EXPECT_THAT(blocked.err, HasSubstr("Permission denied"));
    // With the file opened up by mistake, preforkctl still checks who connects.
    ::chmod(path.c_str(), 0666);
    const CtlResult refused = ctl({"--socket", path, "stop"}, as_nobody);
    EXPECT_EQ(refused.status, 1) << refused.err;
    EXPECT_THAT(refused.err, HasSubstr("permission denied: only root"));
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.err(), "control: refused a client").empty(); })) << run.err();
    EXPECT_FALSE(run.exited());
    EXPECT_EQ(ctl({"--socket", path, "status"}).status, 0);
}

TEST(Control, AStaleSocketIsReplacedAndALiveOneIsNeverStolen) {
    TempDir dir;
    const std::string path = dir.path() + "/ctl.sock";
    {  // a socket file nobody listens on, as a preforkctl that was SIGKILLed leaves it
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
        ::close(fd);
    }
    Process first(preforkctl({"--control", path, "-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << first.err();
    EXPECT_EQ(ctl({"--socket", path, "status"}).status, 0);

    TempDir other;
    Process second(preforkctl({"--control", path, "-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + other.path()}});
    EXPECT_EQ(second.wait(), 4);
    EXPECT_THAT(second.err(), HasSubstr("control socket " + path + " is in use by a running preforkctl (pid " +
                                        std::to_string(first.pid()) + ")"));
    EXPECT_TRUE(read_reports(other.path()).empty()) << "nothing is started";
    EXPECT_EQ(ctl({"--socket", path, "status"}).status, 0) << "the first one keeps its socket";
}

TEST(Control, TwoUnnamedInstancesOfOneCommandBothRunTheSecondWithoutSocket) {
    TempDir dir;
    Process first(preforkctl({"-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << first.err();
    Process second(preforkctl({"-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 2).size(), 2u) << second.err();
    EXPECT_THAT(second.err(), HasSubstr("running without a control socket"));
    EXPECT_THAT(second.err(), HasSubstr("give --name"));
    EXPECT_FALSE(second.exited());
    EXPECT_EQ(status_json({"--name", "probe_worker"})["pid"], first.pid());
}

TEST(Control, ControlNoneOpensNothingAndCtlSaysSo) {
    TempDir dir;
    Process run(preforkctl({"--control", "none", "-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << run.err();
    int sockets = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(run.pid()) + "/fd")) {
        std::error_code error;
        sockets += std::filesystem::read_symlink(entry.path(), error).string().starts_with("socket:") ? 1 : 0;
    }
    EXPECT_EQ(sockets, 0) << "without --listen and --control none, preforkctl holds no socket";
    const CtlResult result = ctl({"status"});
    EXPECT_EQ(result.status, 4);
    EXPECT_THAT(result.err, HasSubstr("preforkctl: error: "));
}

TEST(Control, WorkersDoNotInheritTheControlSocket) {
    TempDir dir;
    Process run(preforkctl({"--name", "f", "-n", "1", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}),
                {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 1);
    ASSERT_EQ(reports.size(), 1u) << run.err();
    EXPECT_EQ(reports[0].at("fds"), "0,1,2,3") << "only stdio and the listener";
}

TEST(Control, GarbageGetsAnErrorAndTheConnectionServesTheNextRequest) {
    TempDir dir;
    Process run(preforkctl({"--name", "x", "-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    RawClient client(control_socket("x"));
    ASSERT_TRUE(client.connected());
    client.send("hello\n");
    const json refusal = json::parse(client.read_line(), nullptr, false);
    EXPECT_EQ(refusal["ok"], false);
    EXPECT_THAT(refusal["error"].get<std::string>(), HasSubstr("not JSON"));
    client.send("{\"v\":1,\"cmd\":\"dance\"}\n");
    EXPECT_THAT(client.read_line(), HasSubstr("unknown command"));
    client.send("{\"v\":1,\"cmd\":\"status\"}\n");
    const json status = json::parse(client.read_line(), nullptr, false);
    EXPECT_EQ(status["ok"], true);
    EXPECT_EQ(status["v"], 1);
    EXPECT_EQ(status["status"]["slots"].size(), 1u);
}

TEST(Control, AHugeLineIsRefusedAndDroppedWithoutStallingTheOthers) {
    TempDir dir;
    Process run(preforkctl({"--name", "y", "-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    RawClient client(control_socket("y"));
    ASSERT_TRUE(client.connected());
    std::thread sender([&] { client.send(std::string(10 << 20, 'x')); });
    EXPECT_THAT(client.read_line(), HasSubstr("longer than 65536 bytes"));
    EXPECT_TRUE(client.closed_within(5s));
    sender.join();
    EXPECT_EQ(ctl({"--name", "y", "status"}).status, 0);
    EXPECT_THAT(run.err(), HasSubstr("sent a request longer than 65536 bytes; dropped"));
}

TEST(Control, SilentClientsNeitherBlockOthersNorStayForever) {
    TempDir dir;
    Process run(preforkctl({"--name", "z", "-n", "1", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 1).size(), 1u) << run.err();
    std::vector<std::unique_ptr<RawClient>> silent;
    for (int i = 0; i < 16; ++i) silent.push_back(std::make_unique<RawClient>(control_socket("z")));
    // 16 connections that say nothing fill the table: the 17th is told so at once.
    RawClient extra(control_socket("z"));
    EXPECT_THAT(extra.read_line(5s), HasSubstr("too many control clients"));
    // The silent ones are dropped after the client timeout (10 s), and then others are served again.
    EXPECT_TRUE(silent.front()->closed_within(15s));
    const CtlResult status = ctl({"--name", "z", "status"});
    EXPECT_EQ(status.status, 0) << status.err;
}

TEST(Control, AClientThatNeverReadsItsAnswersIsDroppedAndOthersAreServedMeanwhile) {
    TempDir dir;
    Process run(preforkctl({"-v", "--name", "w", "-n", "8", "--", PROBE_WORKER_BIN}), {{"PROBE_DIR=" + dir.path()}});
    ASSERT_EQ(wait_for_reports(dir.path(), 8).size(), 8u) << run.err();
    RawClient hoarder(control_socket("w"));
    ASSERT_TRUE(hoarder.connected());
    // Far more answers than the socket buffers hold: preforkctl's write to this client stalls.
    std::string requests;
    for (int i = 0; i < 2000; ++i) requests += "{\"cmd\":\"status\"}\n";
    std::thread sender([&] { hoarder.send(requests); });
    const auto start = std::chrono::steady_clock::now();
    const CtlResult other = ctl({"--name", "w", "status"});
    EXPECT_EQ(other.status, 0) << other.err;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "another client must not wait for the stalled one";
    EXPECT_TRUE(wait_until([&] { return !lines_with(run.err(), "unread answer").empty(); }, 20s)) << run.err();
    sender.join();
    EXPECT_FALSE(run.exited());
}

TEST(Control, CtlUsageErrorsAndNothingToConnectTo) {
    EXPECT_EQ(ctl({"bogus"}).status, 2);
    EXPECT_EQ(ctl({"scale"}).status, 2);
    const CtlResult missing = ctl({"--name", "nobody-runs-this", "status"});
    EXPECT_EQ(missing.status, 4);
    EXPECT_THAT(missing.err, HasSubstr("preforkctl: error: cannot connect to"));
    const CtlResult help = ctl({"--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_THAT(help.out, HasSubstr("scale N|+N|-N"));
}

TEST(Control, StatusAnswersQuicklyWithSixtyFourWorkersRelayingAtFullSpeed) {
    Options options;
    // preforkctl's stdout goes to /dev/null: the relay runs as fast as it can.
    options.prefix = {"sh", "-c", "exec \"$0\" \"$@\" >/dev/null"};
    Process run(preforkctl({"--name", "busy", "-n", "64", "--", PROBE_WORKER_BIN, "--fast-lines", "100000000"}),
                options);
    json status;
    ASSERT_TRUE(wait_until([&] { return (status = try_status({"--name", "busy"})).is_object() &&
                                        status["slots"].size() == 64 && status["out"]["bytes"].get<std::uint64_t>() > 0; },
                           30s))
        << run.err();
    for (int i = 0; i < 5; ++i) {
        const auto start = std::chrono::steady_clock::now();
        const CtlResult result = ctl({"--name", "busy", "status", "--json"});
        const auto took = std::chrono::steady_clock::now() - start;
        ASSERT_EQ(result.status, 0) << result.err;
        EXPECT_LT(took, 5s) << "status must not wait behind the relay";
    }
    const json later = status_json({"--name", "busy"});
    EXPECT_GT(later["out"]["lines"].get<std::uint64_t>(), status["out"]["lines"].get<std::uint64_t>());
}

TEST(Metrics, ServesTheWorkersByStateAndWorkersDoNotInheritItsSocket) {
    TempDir dir;
    Process run(preforkctl({"--metrics", "127.0.0.1:0", "-n", "2", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}),
                {{"PROBE_DIR=" + dir.path()}});
    const auto reports = wait_for_reports(dir.path(), 2);
    ASSERT_EQ(reports.size(), 2u) << run.err();
    for (const Report& report : reports) EXPECT_EQ(report.at("fds"), "0,1,2,3") << "only stdio and the listener";
    const int port = metrics_port(run.err());
    ASSERT_GT(port, 0) << run.err();
    std::string scrape;
    EXPECT_TRUE(wait_until([&] {
        scrape = http_get(port, "/metrics");
        return scrape.find("preforkctl_workers{state=\"ready\"} 2") != std::string::npos;
    })) << scrape;
    EXPECT_THAT(scrape, HasSubstr("# TYPE preforkctl_worker_restarts_total counter"));
    EXPECT_THAT(scrape, HasSubstr("preforkctl_listener_backlog{"));
}

TEST(Metrics, APortInUseIsExitFourWithNothingStartedAndABadAddressIsAUsageError) {
    Process first(preforkctl({"--metrics", "127.0.0.1:0", "--control", "none", "-n", "1", "--", PROBE_WORKER_BIN}));
    ASSERT_TRUE(wait_until([&] { return metrics_port(first.err()) > 0; })) << first.err();
    const std::string taken = "127.0.0.1:" + std::to_string(metrics_port(first.err()));
    TempDir dir;
    Process second(preforkctl({"--metrics", taken, "--control", "none", "-n", "1", "--", PROBE_WORKER_BIN}),
                   {{"PROBE_DIR=" + dir.path()}});
    EXPECT_EQ(second.wait(), 4);
    EXPECT_THAT(second.err(), HasSubstr("preforkctl: error: cannot serve metrics on " + taken + ": Address already in use"));
    EXPECT_TRUE(read_reports(dir.path()).empty()) << "no worker is started";
    Process bad(preforkctl({"--metrics", "nine-thousand", "--", PROBE_WORKER_BIN}));
    EXPECT_EQ(bad.wait(), 2);
    EXPECT_EQ(bad.err(), "preforkctl: error: --metrics: 'nine-thousand' is not HOST:PORT, :PORT or [V6]:PORT\n");
}
