// Output multiplexing (SPEC §8): whole lines, nothing lost, a supervisor that never waits for its stdout.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
        lines.push_back(text.substr(start, end - start));
    }
    if (start < text.size()) lines.push_back(text.substr(start) + "<no newline>");
    return lines;
}

std::uint32_t fnv1a(std::string_view text) {
    std::uint32_t hash = 2166136261u;
    for (const char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
    return hash;
}

std::string shorten(const std::string& text) { return text.size() > 200 ? text.substr(0, 200) + "..." : text; }

int bytes_in_pipe(int fd) {
    int n = 0;
    return ::ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

std::vector<pid_t> report_pids(const std::string& dir) {
    std::vector<pid_t> pids;
    for (const Report& report : read_reports(dir)) pids.push_back(std::stoi(report.at("pid")));
    return pids;
}

// Reads `fd` until EOF (or the deadline) and returns everything.
std::string read_to_end(int fd, std::chrono::milliseconds deadline = 60s) {
    std::string all;
    char buffer[65536];
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        all.append(buffer, static_cast<std::size_t>(n));
    }
    return all;
}

std::string wchan(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/wchan");
    std::string text;
    std::getline(in, text);
    return text;
}

// A small strict JSON reader: enough to prove that every output line is one valid JSON object, and to
// decode its string values (escapes included) into UTF-8 bytes.
class Json {
public:
    explicit Json(std::string_view text) : text_(text) {}

    // Parses one object of scalar values; returns false on any syntax error or trailing garbage.
    bool parse_object(std::map<std::string, std::string>& fields) {
        skip_space();
        if (!take('{')) return false;
        skip_space();
        if (take('}')) return at_end();
        for (;;) {
            std::string key;
            std::string value;
            skip_space();
            if (!parse_string(key)) return false;
            skip_space();
            if (!take(':')) return false;
            skip_space();
            if (!parse_value(value)) return false;
            fields[key] = value;
            skip_space();
            if (take(',')) continue;
            if (take('}')) return at_end();
            return false;
        }
    }

private:
    bool at_end() {
        skip_space();
        return pos_ == text_.size();
    }
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    }
    bool take(char c) {
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool parse_value(std::string& value) {
        if (pos_ < text_.size() && text_[pos_] == '"') return parse_string(value);
        for (const char* word : {"true", "false", "null"}) {
            if (text_.substr(pos_).rfind(word, 0) == 0) {
                value = word;
                pos_ += std::string_view(word).size();
                return true;
            }
        }
        const std::size_t start = pos_;
        take('-');
        while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])) != 0) ++pos_;
        value = std::string(text_.substr(start, pos_ - start));
        return pos_ > start && value != "-";
    }
    static void append_utf8(std::string& out, unsigned code) {
        if (code < 0x80) {
            out += static_cast<char>(code);
        } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
        } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        }
    }
    bool parse_string(std::string& out) {
        if (!take('"')) return false;
        while (pos_ < text_.size()) {
            const auto c = static_cast<unsigned char>(text_[pos_++]);
            if (c == '"') return true;
            if (c < 0x20) return false;  // raw control bytes are not allowed in JSON strings
            if (c != '\\') {
                out += static_cast<char>(c);
                continue;
            }
            if (pos_ >= text_.size()) return false;
            const char e = text_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    if (pos_ + 4 > text_.size()) return false;
                    const std::string hex(text_.substr(pos_, 4));
                    if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return false;
                    append_utf8(out, static_cast<unsigned>(std::stoul(hex, nullptr, 16)));
                    pos_ += 4;
                    break;
                }
                default: return false;
            }
        }
        return false;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

std::string hex_of(const std::string& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (const char c : bytes) {
        hex += digits[static_cast<unsigned char>(c) >> 4];
        hex += digits[static_cast<unsigned char>(c) & 0xF];
    }
    return hex;
}

// Checks "NAME.SLOT | T SLOT PID SEQ HASH PAYLOAD" lines: each intact (checksum), from the slot its prefix
// names, and every worker's lines 1..lines_per_worker present exactly once.
void expect_every_torture_line_once(const std::string& out, const std::vector<pid_t>& pids, int lines_per_worker) {
    std::map<pid_t, std::multiset<int>> seen;
    std::size_t lines = 0;
    std::size_t bad = 0;
    std::string first_bad;
    for (const std::string& line : split_lines(out)) {
        if (line.rfind("preforkctl: ", 0) == 0) continue;  // our own messages, when stderr is merged
        ++lines;
        // "probe_worker.7  | T 7 PID SEQ HASH PAYLOAD"
        const auto bar = line.find(" | ");
        std::istringstream fields(bar == std::string::npos ? "" : line.substr(bar + 3));
        std::string tag, slot, pid, seq, hash;
        fields >> tag >> slot >> pid >> seq >> hash;
        const auto payload_at = bar + 3 + tag.size() + slot.size() + pid.size() + seq.size() + hash.size() + 5;
        const bool ok = bar != std::string::npos && line.rfind("probe_worker." + slot + " ", 0) == 0 && tag == "T" &&
                        payload_at <= line.size() && hash.size() == 8 &&
                        hash.find_first_not_of("0123456789abcdef") == std::string::npos &&
                        std::stoul(hash, nullptr, 16) == fnv1a(std::string_view(line).substr(payload_at));
        if (!ok) {
            if (bad++ == 0) first_bad = shorten(line);
            continue;
        }
        seen[std::stoi(pid)].insert(std::stoi(seq));
    }
    EXPECT_EQ(bad, 0u) << "first torn or foreign line: " << first_bad;
    EXPECT_EQ(lines, pids.size() * static_cast<std::size_t>(lines_per_worker));
    std::multiset<int> every_line;
    for (int seq = 1; seq <= lines_per_worker; ++seq) every_line.insert(seq);
    for (const pid_t pid : pids) {
        EXPECT_EQ(seen[pid], every_line) << "worker " << pid << " lost or repeated lines";
    }
}

// How many of `pid`'s descriptors on the same pipe or terminal as its `fd` are O_NONBLOCK (flags: of
// /proc/PID/fdinfo, octal), or -1 when `fd` is not open. preforkctl's stdout and stderr pipes are blocking
// as the harness made them; the description preforkctl reopens through /proc/self/fd is not.
int nonblocking_descriptors(pid_t pid, int fd) {
    namespace fs = std::filesystem;
    const std::string proc = "/proc/" + std::to_string(pid);
    std::error_code error;
    const fs::path file = fs::read_symlink(proc + "/fd/" + std::to_string(fd), error);
    if (error) return -1;
    int count = 0;
    for (const auto& entry : fs::directory_iterator(proc + "/fd", error)) {
        std::error_code gone;
        if (fs::read_symlink(entry.path(), gone) != file || gone) continue;
        std::ifstream info(proc + "/fdinfo/" + entry.path().filename().string());
        for (std::string line; std::getline(info, line);) {
            if (line.rfind("flags:", 0) == 0 && (std::stol(line.substr(6), nullptr, 8) & O_NONBLOCK) != 0) ++count;
        }
    }
    return count;
}

// A wrapper (Options::prefix) that runs the command without /proc, as in a bare chroot: `unshare --mount`
// (private propagation: the host's /proc is untouched), an empty tmpfs over /proc, then exec; sh exits 1
// instead when /proc could not be hidden.
std::vector<std::string> without_proc() {
    return {"unshare", "--mount", "sh", "-c",
            "mount -t tmpfs -o size=64k none /proc && ! test -e /proc/self || exit 1; exec \"$@\"", "sh"};
}

// Why without_proc() cannot work here, or "" when it does.
std::string why_proc_cannot_be_hidden() {
    if (kSanitizedBuild) {
        // Measured: without /proc the sanitizer runtime cannot read ASAN_OPTIONS (/proc/self/environ), and
        // LeakSanitizer fails at exit (/proc/PID/task), so a sanitized preforkctl always exits 1.
        return "the sanitizer runtime needs /proc (options from /proc/self/environ, LeakSanitizer's /proc/PID/task)";
    }
    if (::geteuid() != 0) return "needs root: unshare --mount and a mount over /proc";
    Options options;
    options.prefix = without_proc();
    Process probe({"true"}, options);
    const int status = probe.wait(10s);
    if (status == 0) return "";
    if (status == 127) return "unshare (util-linux) is missing: " + probe.err();
    return "cannot hide /proc in a new mount namespace (status " + std::to_string(status) + "): " + probe.err();
}

}  // namespace

// supervisord tears lines at 128 KiB reads, circus at 1 KiB: here 16 workers write random-length lines of
// 1 B to 64 KiB with a checksum each, and every worker is replaced twice while the others keep writing.
TEST(Output, TortureSixteenWorkersRandomLinesAcrossRestartsArriveExactlyOnceAndIntact) {
    constexpr int kWorkers = 16;
    constexpr int kGenerations = 3;
    constexpr int kLinesPerWorker = 40;
    TempDir dir;
    Process run(preforkctl({"-n", std::to_string(kWorkers), "--restart", "on-failure", "--backoff", "10ms..20ms",
                            "--max-line", "131072", "--", PROBE_WORKER_BIN, "--torture",
                            std::to_string(kLinesPerWorker), "--exit-by-generation", std::to_string(kGenerations)}),
                {{"PROBE_DIR=" + dir.path()}});
    // Every generation but the last exits 1 (and is restarted by on-failure); so preforkctl ends with 1.
    ASSERT_EQ(run.wait(120s), 1) << run.err();
    const std::vector<pid_t> pids = report_pids(dir.path());
    ASSERT_EQ(pids.size(), static_cast<std::size_t>(kWorkers * kGenerations)) << run.err();

    expect_every_torture_line_once(run.out(), pids, kLinesPerWorker);
}

// 2>&1: both streams share one pipe. preforkctl writes them through one queue, so that a long stdout line
// written in parts cannot be cut by a stderr line.
TEST(Output, WithStderrMergedIntoStdoutLongLinesOfBothStreamsStayWhole) {
    TempDir dir;
    Options options({"PROBE_DIR=" + dir.path()});
    options.stderr_to_stdout = true;
    Process run(preforkctl({"-n", "4", "--restart", "never", "--max-line", "131072", "--", PROBE_WORKER_BIN,
                            "--torture-both", "60", "--exit", "0"}),
                options);
    ASSERT_EQ(run.wait(60s), 0);
    const std::vector<pid_t> pids = report_pids(dir.path());
    ASSERT_EQ(pids.size(), 4u);
    expect_every_torture_line_once(run.out(), pids, 60);
}

TEST(Output, AnUnterminatedLineDoesNotHoldBackOtherWorkersAndIsShownAfterATimeout) {
    TempDir dir;
    Process run(preforkctl({"-n", "2", "--restart", "never", "--", PROBE_WORKER_BIN,  //
                            "--if-slot", "0", "--print", "abc",                       //
                            "--if-slot", "0", "--sleep", "2000",                      //
                            "--if-slot", "0", "--print", "def\n",                     //
                            "--if-slot", "1", "--sleep", "100",                       //
                            "--if-slot", "1", "--stdout-lines", "3"}),
                {{"PROBE_DIR=" + dir.path()}});
    // Slot 1's lines come while slot 0 sits on "abc" without a newline.
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "probe_worker.1 | out ").size() == 3; }, 5s))
        << run.out() << run.err();
    // Then "abc" is shown on its own (the worker still lives), and the rest of the line is marked as its
    // continuation.
    ASSERT_TRUE(wait_until([&] { return run.out().find("probe_worker.0 | abc\n") != std::string::npos; }, 5s))
        << run.out();
    const auto pids = report_pids(dir.path());
    ASSERT_EQ(pids.size(), 2u);
    for (const pid_t pid : pids) EXPECT_TRUE(is_alive(pid));
    ASSERT_TRUE(wait_until([&] { return run.out().find("probe_worker.0 + def\n") != std::string::npos; }, 5s))
        << run.out();
    const std::string out = run.out();
    EXPECT_LT(out.find("probe_worker.1 | out 3"), out.find("probe_worker.0 | abc")) << out;
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

// preforkctl ... | sleep 600: nobody reads stdout. Supervision goes on (a killed worker is replaced) and TERM
// still stops everything promptly.
TEST(Output, WithAStdoutNobodyReadsRestartsAndStopStillWork) {
    TempDir dir;
    Options options({"PROBE_DIR=" + dir.path()});
    options.stdout_to = StdoutTo::unread;
    Process run(preforkctl({"-n", "2", "--stop-timeout", "30s", "--backoff", "10ms..20ms", "--", PROBE_WORKER_BIN,
                            "--stdout-lines", "200000"}),
                options);
    ASSERT_TRUE(wait_until([&] { return bytes_in_pipe(run.stdout_reader()) >= 60000; })) << run.err();
    ASSERT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 2; }));
    ::kill(report_pids(dir.path()).front(), SIGKILL);
    ASSERT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 3; })) << run.err();
    ASSERT_TRUE(wait_until([&] { return lines_with(run.err(), "restarting in").size() == 1; })) << run.err();
    const auto asked = std::chrono::steady_clock::now();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(10s), 0) << run.err();
    EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s) << "the stop waited for the workers' last output";
}

// --log-overflow block: while the reader stalls, workers wait; once it reads again, nothing is missing.
TEST(Output, BlockModeLosesNothingWhenTheReaderStallsAndThenResumes) {
    TempDir dir;
    Options options({"PROBE_DIR=" + dir.path()});
    options.stdout_to = StdoutTo::unread;
    constexpr int kLines = 200000;  // 2 x ~4.5 MB: well past the 1 MiB backlog and the pipes
    Process run(preforkctl({"-n", "2", "--restart", "never", "--", PROBE_WORKER_BIN, "--stdout-lines",
                            std::to_string(kLines), "--exit", "0"}),
                options);
    ASSERT_TRUE(wait_until([&] { return bytes_in_pipe(run.stdout_reader()) >= 60000; })) << run.err();
    ASSERT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 2; }));
    // Back-pressure, not an ever-growing queue: both workers end up waiting in write(2) on their pipes.
    const auto pids = report_pids(dir.path());
    ASSERT_TRUE(wait_until([&] {
        return wchan(pids[0]).find("pipe_write") != std::string::npos &&
               wchan(pids[1]).find("pipe_write") != std::string::npos;
    })) << wchan(pids[0]) << " " << wchan(pids[1]);
    // ...and stay there: with an unbounded queue they would be done and gone within milliseconds.
    EXPECT_FALSE(wait_until([&] { return !is_alive(pids[0]) || !is_alive(pids[1]); }, 1s));
    EXPECT_NE(wchan(pids[0]).find("pipe_write"), std::string::npos);
    const std::string out = read_to_end(run.stdout_reader());
    ASSERT_EQ(run.wait(), 0) << run.err();
    std::map<std::string, std::set<int>> numbers;  // pid -> line numbers
    std::size_t lines = 0;
    for (const std::string& line : split_lines(out)) {
        ++lines;
        std::istringstream fields(line.substr(line.find(" | ") + 3));
        std::string word, number, pid;
        fields >> word >> number >> pid;
        ASSERT_EQ(word, "out") << shorten(line);
        numbers[pid].insert(std::stoi(number));
    }
    EXPECT_EQ(lines, 2u * kLines);
    ASSERT_EQ(numbers.size(), 2u);
    for (const auto& [pid, set] : numbers) {
        EXPECT_EQ(set.size(), static_cast<std::size_t>(kLines)) << pid;
    }
    EXPECT_THAT(run.err(), Not(HasSubstr("dropped")));
}

namespace {

struct StalledRun {
    std::string out;
    std::vector<int> pipe_capacities;  // of each worker's stdout pipe, after the run
};

// Two workers write 4 MiB of 64-byte lines each into a preforkctl whose stdout is not read at first: their
// pipes fill up while the relay waits for its output, so that the relay then reads full pipes.
StalledRun run_with_a_stalled_reader(Options options) {
    TempDir dir;
    options.env.push_back("PROBE_DIR=" + dir.path());
    options.stdout_to = StdoutTo::unread;
    constexpr int kLines = 65536;
    Process run(
        preforkctl({"-n", "2", "--restart", "never", "--", PROBE_WORKER_BIN, "--fast-lines", std::to_string(kLines)}),
        options);
    EXPECT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 2; })) << run.err();
    const auto pids = report_pids(dir.path());
    EXPECT_TRUE(wait_until([&] {
        return wchan(pids.at(0)).find("pipe_write") != std::string::npos &&
               wchan(pids.at(1)).find("pipe_write") != std::string::npos;
    })) << run.err();
    // The workers stay alive after writing: read exactly what they wrote, then look at their pipes.
    const std::size_t expected = 2u * kLines * (sizeof "probe_worker.0 | " - 1 + 64);
    StalledRun result;
    char buffer[65536];
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (result.out.size() < expected && std::chrono::steady_clock::now() < deadline) {
        const ssize_t n = ::read(run.stdout_reader(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        result.out.append(buffer, static_cast<std::size_t>(n));
    }
    for (const pid_t pid : pids) {
        const int pipe = ::open(("/proc/" + std::to_string(pid) + "/fd/1").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        result.pipe_capacities.push_back(pipe >= 0 ? ::fcntl(pipe, F_GETPIPE_SZ) : -1);
        if (pipe >= 0) ::close(pipe);
    }
    run.signal(SIGTERM);
    EXPECT_NE(run.wait(), -1);
    return result;
}

void expect_every_fast_line_whole(const std::string& out) {
    std::size_t lines = 0;
    std::size_t bad = 0;
    for (const std::string& line : split_lines(out)) {
        ++lines;
        if (line.size() != 16 + 64 || line.rfind("probe_worker.", 0) != 0 ||
            line.compare(14, 19, " | fast line from a") != 0) {
            ++bad;
        }
    }
    EXPECT_EQ(lines, 2u * 65536);
    EXPECT_EQ(bad, 0u);
}

}  // namespace

// A pipe that the relay finds full grows (fewer reads and fewer wake-ups of a worker waiting for room).
TEST(Output, AWorkerPipeFoundFullGrows) {
    const StalledRun run = run_with_a_stalled_reader({});
    expect_every_fast_line_whole(run.out);
    for (const int capacity : run.pipe_capacities) EXPECT_GT(capacity, 65536);
}

// Where F_SETPIPE_SZ is refused (EPERM past the user's pipe limits), pipes keep their size and work as before.
TEST(Output, WhenPipesCannotGrowEveryLineStillArrivesWhole) {
    TempDir marks;
    const std::string mark = marks.path() + "/refused";
    // The shim is preloaded before a sanitizer runtime, which must then not insist on coming first.
    const char* asan = std::getenv("ASAN_OPTIONS");
    ::setenv("ASAN_OPTIONS", (std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0").c_str(), 1);
    const StalledRun run =
        run_with_a_stalled_reader({{"LD_PRELOAD=" NO_PIPE_RESIZE_LIB, "NO_PIPE_RESIZE_MARK=" + mark}});
    expect_every_fast_line_whole(run.out);
    EXPECT_EQ(::access(mark.c_str(), F_OK), 0) << "the relay never tried to grow a pipe";
    for (const int capacity : run.pipe_capacities) EXPECT_EQ(capacity, 65536);
}

// --log-overflow drop: workers are not slowed down; whole lines are discarded, counted and reported.
TEST(Output, DropModeDiscardsWholeLinesCountsThemAndSaysSo) {
    TempDir dir;
    Options options({"PROBE_DIR=" + dir.path()});
    options.stdout_to = StdoutTo::unread;
    // 2 x ~4.5 MB against 1 MiB of backlog and a 1 MiB pipe.
    Process run(preforkctl({"-n", "2", "--restart", "never", "--log-overflow", "drop", "--", PROBE_WORKER_BIN,
                            "--stdout-lines", "200000", "--exit", "0"}),
                options);
    // Nobody reads, yet the workers finish and preforkctl ends by itself.
    ASSERT_EQ(run.wait(30s), 0) << run.err();
    const auto reports = lines_with(run.err(), "preforkctl: warning: dropped ");
    ASSERT_EQ(reports.size(), 1u) << run.err();
    EXPECT_THAT(reports[0], HasSubstr("line"));
    EXPECT_THAT(reports[0], HasSubstr("stdout did not keep up (--log-overflow drop)"));
    // What did reach the pipe is whole lines, except that the very last one may be cut where preforkctl gave up
    // at exit (the kernel took part of it; the pipe had no room for the rest).
    auto lines = split_lines(read_to_end(run.stdout_reader(), 5s));
    ASSERT_FALSE(lines.empty());
    if (lines.back().ends_with("<no newline>")) lines.pop_back();
    for (const std::string& line : lines) {
        EXPECT_THAT(line, ::testing::MatchesRegex("probe_worker\\.[01] \\| out [0-9]+ pid=[0-9]+")) << shorten(line);
    }
}

// A closed stdout (EPIPE) does not kill preforkctl: it says so once and keeps supervising.
TEST(Output, AClosedStdoutIsReportedAndSupervisionGoesOn) {
    TempDir dir;
    Options options({"PROBE_DIR=" + dir.path()});
    options.stdout_to = StdoutTo::closed;
    Process run(preforkctl({"-n", "1", "--backoff", "10ms..20ms", "--", PROBE_WORKER_BIN, "--stdout-lines", "5"}),
                options);
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "cannot write to stdout (Broken pipe)").empty(); }))
        << run.err();
    ASSERT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 1; }));
    ::kill(report_pids(dir.path()).front(), SIGKILL);
    ASSERT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 2; })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    // At least the first worker's 5 lines (queued when the write failed) are counted.
    EXPECT_THAT(run.err(), ::testing::ContainsRegex("[0-9]+ lines of worker output could not be written to a "
                                                    "closed stdout"));
}

TEST(Output, JsonLinesAreValidJsonForAnyBytesWithInvalidUtf8Replaced) {
    std::string bytes;
    for (int c = 0; c < 256; ++c) {
        if (c != '\n') bytes += static_cast<char>(c);
    }
    Process run(preforkctl({"-n", "1", "--restart", "never", "--log-format", "json", "--", PROBE_WORKER_BIN,
                            "--print-hex", hex_of(bytes + "\n"), "--print-hex", hex_of("\xe2\x82\xac \"q\"\n"),
                            "--exit", "0"}));
    ASSERT_EQ(run.wait(), 0) << run.err();
    const auto lines = split_lines(run.out());
    ASSERT_EQ(lines.size(), 2u) << run.out();
    std::vector<std::map<std::string, std::string>> objects;
    for (const std::string& line : lines) {
        std::map<std::string, std::string> fields;
        ASSERT_TRUE(Json(line).parse_object(fields)) << line;
        for (const char* key : {"ts", "slot", "pid", "stream", "line"}) EXPECT_TRUE(fields.count(key)) << key;
        EXPECT_EQ(fields["slot"], "0");
        EXPECT_EQ(fields["stream"], "stdout");
        objects.push_back(fields);
    }
    // Bytes 0x00-0x7f come back as they were (escaped on the way); each byte of 0x80-0xff, none of which
    // forms valid UTF-8 here, becomes U+FFFD.
    std::string expected = bytes.substr(0, 0x7f);
    for (int i = 0; i < 128; ++i) expected += "\xef\xbf\xbd";
    EXPECT_EQ(objects[0]["line"], expected);
    EXPECT_EQ(objects[1]["line"], "\xe2\x82\xac \"q\"");
}

TEST(Output, ColourOnlyOnATerminalNeverWithNoColorAndAlwaysWhenForced) {
    const auto run_with = [](StdoutTo to, std::vector<std::string> extra_env, std::vector<std::string> flags) {
        Options options(std::move(extra_env));
        options.stdout_to = to;
        std::vector<std::string> args = {"-n", "1", "--restart", "never"};
        args.insert(args.end(), flags.begin(), flags.end());
        for (const char* arg : {"--", PROBE_WORKER_BIN, "--stdout-lines", "1", "--exit", "0"}) args.push_back(arg);
        Process run(preforkctl(args), options);
        EXPECT_EQ(run.wait(), 0) << run.err();
        const std::string out = run.out();
        EXPECT_THAT(out, HasSubstr("out 1 pid="));
        return out.find("\033[") != std::string::npos;
    };
    EXPECT_FALSE(run_with(StdoutTo::captured, {"NO_COLOR="}, {})) << "a pipe is not a terminal";
    EXPECT_TRUE(run_with(StdoutTo::terminal, {"NO_COLOR="}, {})) << "a terminal, NO_COLOR empty";
    EXPECT_FALSE(run_with(StdoutTo::terminal, {"NO_COLOR=1"}, {})) << "NO_COLOR set";
    EXPECT_FALSE(run_with(StdoutTo::terminal, {}, {"--color", "never"}));
    EXPECT_TRUE(run_with(StdoutTo::captured, {"NO_COLOR=1"}, {"--color", "always"})) << "forced";
}

// Colour is decided for each stream by itself: a terminal on stdout does not colour stderr lines written to
// a pipe, and a terminal on stderr colours them while stdout lines to a pipe stay plain.
TEST(Output, ColourIsDecidedPerStreamByWhetherThatStreamIsATerminal) {
    const std::vector<std::string> args = preforkctl({"-n", "1", "--restart", "never", "--", PROBE_WORKER_BIN,
                                                      "--stdout-lines", "1", "--stderr-lines", "1", "--exit", "0"});
    {
        Options options({"NO_COLOR="});
        options.stdout_to = StdoutTo::terminal;
        Process run(args, options);
        ASSERT_EQ(run.wait(), 0) << run.err();
        EXPECT_THAT(run.out(), HasSubstr("\033[")) << "stdout is a terminal";
        ASSERT_THAT(run.err(), HasSubstr("probe_worker.0 | err 1 pid=")) << run.err();
        EXPECT_THAT(run.err(), Not(HasSubstr("\033["))) << "stderr is a pipe: " << run.err();
    }
    // The same with the two swapped: a wrapper makes the terminal preforkctl's stderr and the pipe that
    // the harness reads as err() its stdout.
    Options options({"NO_COLOR="});
    options.stdout_to = StdoutTo::terminal;
    options.prefix = {"/bin/sh", "-c", "exec \"$@\" 3>&1 1>&2 2>&3 3>&-", "sh"};
    Process run(args, options);
    ASSERT_EQ(run.wait(), 0) << run.err();
    const std::string terminal = run.out();  // preforkctl's stderr
    const std::string piped = run.err();     // preforkctl's stdout
    ASSERT_THAT(piped, HasSubstr("probe_worker.0 | out 1 pid=")) << piped;
    EXPECT_THAT(piped, Not(HasSubstr("\033["))) << "stdout is a pipe: " << piped;
    EXPECT_THAT(terminal, HasSubstr("\033[")) << "stderr is a terminal: " << terminal;
    EXPECT_THAT(terminal, HasSubstr("err 1 pid=")) << terminal;
}

// With --log-format json a log collector reads one format on stderr: preforkctl's own messages, before,
// while and after workers run, are JSON objects with "source":"preforkctl" and "level" beside the worker
// lines, each whole on its line; so is the error of a setting that is not valid.
TEST(Output, WithJsonPreforkctlsOwnMessagesAreJsonLinesToo) {
    Process run(preforkctl({"-n", "2", "--restart", "never", "--log-format", "json", "--", PROBE_WORKER_BIN,
                            "--stderr-lines", "3", "--exit", "0"}));
    ASSERT_EQ(run.wait(), 0) << run.err();
    int own = 0;
    int workers = 0;
    std::set<std::string> levels;
    std::string texts;
    for (const std::string& line : split_lines(run.err())) {
        std::map<std::string, std::string> fields;
        ASSERT_TRUE(Json(line).parse_object(fields)) << "not a JSON object: " << line;
        EXPECT_THAT(fields["ts"], ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z")) << line;
        EXPECT_EQ(fields["stream"], "stderr") << line;
        if (fields.count("source") != 0) {
            EXPECT_EQ(fields["source"], "preforkctl") << line;
            EXPECT_EQ(fields["pid"], std::to_string(run.pid())) << line;
            levels.insert(fields["level"]);
            texts += fields["line"] + "\n";
            ++own;
        } else {
            EXPECT_THAT(fields["line"], ::testing::StartsWith("err ")) << line;
            ++workers;
        }
    }
    EXPECT_EQ(workers, 6) << run.err();
    EXPECT_GE(own, 3) << run.err();
    EXPECT_EQ(levels.count("info"), 1u) << run.err();
    for (const std::string& level : levels) EXPECT_THAT(level, ::testing::AnyOf("debug", "info", "warning")) << run.err();
    EXPECT_THAT(texts, HasSubstr("starting 2 workers")) << "logged before the relay took over";
    EXPECT_THAT(texts, HasSubstr("exited with status 0")) << "logged through the relay";

    Process bad(preforkctl({"--log-format", "json", "-n", "many", "--", "/bin/true"}));
    EXPECT_EQ(bad.wait(), 2);
    const auto lines = split_lines(bad.err());
    ASSERT_FALSE(lines.empty());
    for (const std::string& line : lines) {
        std::map<std::string, std::string> fields;
        ASSERT_TRUE(Json(line).parse_object(fields)) << "not a JSON object: " << line;
        EXPECT_EQ(fields["source"], "preforkctl") << line;
    }
}

// The errors that come before any setting is known are JSON lines too when the command line asks for json: a
// usage error CLI11 finds, and a config file that is no TOML (its file:line:col in the line). Without
// --log-format json, or with it after "--" (the server's argument), the same errors stay plain text.
TEST(Output, WithJsonOnTheCommandLineUsageAndConfigFileErrorsAreJsonLines) {
    TempDir dir;
    const std::string bad_toml = dir.path() + "/bad.toml";
    std::ofstream(bad_toml) << "workers = 2\nlisten = [\n";
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string text;
    };
    const std::vector<Case> cases = {
        {{"--log-format", "json", "--no-such-option", "--", "/bin/true"}, 2, "--no-such-option"},
        {{"--log-format=json", "-n"}, 2, "--workers"},
        {{"--log-format", "json", "-c", bad_toml}, 3, "bad.toml:2:"},
    };
    for (const Case& c : cases) {
        Process bad(preforkctl(c.args));
        EXPECT_EQ(bad.wait(), c.status) << bad.err();
        const auto lines = split_lines(bad.err());
        ASSERT_EQ(lines.size(), 1u) << bad.err();
        std::map<std::string, std::string> fields;
        ASSERT_TRUE(Json(lines[0]).parse_object(fields)) << "not a JSON object: " << lines[0];
        EXPECT_EQ(fields["source"], "preforkctl") << lines[0];
        EXPECT_EQ(fields["level"], "error") << lines[0];
        EXPECT_THAT(fields["line"], HasSubstr(c.text)) << lines[0];
        EXPECT_TRUE(bad.out().empty()) << bad.out();
    }
    Process plain(preforkctl({"--no-such-option", "--", "/bin/echo", "--log-format", "json"}));
    EXPECT_EQ(plain.wait(), 2);
    EXPECT_THAT(plain.err(), ::testing::StartsWith("preforkctl: error: ")) << plain.err();
    EXPECT_EQ(split_lines(plain.err()).size(), 1u) << plain.err();
}

// s6-log's rule: a line without a newline is split at --max-line, and memory stays bounded. 20 MB: a relay
// that held the whole line would grow by at least 19 MiB.
TEST(Output, AHugeLineIsSplitAtMaxLineWithBoundedMemory) {
    TempDir dir;
    Process run(preforkctl({"-n", "1", "--restart", "never", "--max-line", "8192", "--", PROBE_WORKER_BIN, "--sleep",
                            "300", "--long-line", "20000000"}),
                {{"PROBE_DIR=" + dir.path()}});
    ASSERT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 1; }));
    const long before = status_kib(run.pid(), "VmHWM");
    // 2441 full pieces; the last 3328 bytes wait for a newline and are shown after the partial-line timeout.
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "probe_worker.0 ").size() == 2442; }, 30s))
        << lines_with(run.out(), "probe_worker.0 ").size();
    const long after = status_kib(run.pid(), "VmHWM");
    const std::string out = run.out();
    EXPECT_EQ(lines_with(out, "probe_worker.0 | ").size(), 1u);
    EXPECT_EQ(lines_with(out, "probe_worker.0 + ").size(), 2441u);
    EXPECT_EQ(out.size(), 20000000u + 2442u * std::string("probe_worker.0 | \n").size());
    // About 2 MiB here, 7 MiB under ASan (its allocator keeps freed blocks a while).
    EXPECT_LT(after - before, 9 * 1024) << "peak RSS grew by " << after - before << " KiB for a 20 MB line";
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Output, InheritLetsWorkersWriteStraightToPreforkctlsStdoutAndStderr) {
    Process run(preforkctl({"-n", "2", "--restart", "never", "--log-format", "inherit", "--", PROBE_WORKER_BIN,
                            "--stdout-lines", "2", "--stderr-lines", "1", "--exit", "0"}));
    ASSERT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(lines_with(run.out(), "out ").size(), 4u) << run.out();
    EXPECT_TRUE(lines_with(run.out(), " | ").empty()) << "no prefix: no relay at all";
    EXPECT_EQ(lines_with(run.err(), "err 1 pid=").size(), 2u) << run.err();
    EXPECT_FALSE(lines_with(run.err(), "preforkctl: info: starting 2 workers").empty()) << run.err();
}

TEST(Output, TimestampsAreUtcWithMillisecondsBeforeThePrefix) {
    Process run(preforkctl({"-n", "1", "--restart", "never", "--timestamps", "--", PROBE_WORKER_BIN, "--stdout-lines",
                            "1", "--exit", "0"}));
    ASSERT_EQ(run.wait(), 0) << run.err();
    EXPECT_THAT(run.out(), ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z "
                                                   "probe_worker\\.0 \\| out 1 pid=[0-9]+\n"));
}

// During a rolling restart the old and the new worker of a slot run side by side. The new one gets pipes of
// its own, so each JSON line names the worker that wrote it; the old worker's pipes are read to their end
// (its last words after the new one started included) and then closed.
TEST(Output, JsonPidNamesTheWriterWhileOldAndNewWorkerOverlapInARollingRestart) {
    Process run(preforkctl({"-n", "1", "--log-format", "json", "--ready", "delay:100ms", "--", PROBE_WORKER_BIN,
                            "--stamp", "--on-term", "300"}));
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "started at ms").size() == 1; })) << run.err();
    const auto descriptors = [&] {
        std::size_t count = 0;
        std::error_code error;
        for ([[maybe_unused]] const auto& entry :
             std::filesystem::directory_iterator("/proc/" + std::to_string(run.pid()) + "/fd", error)) {
            ++count;
        }
        return count;
    };
    const std::size_t before = descriptors();
    run.signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.err(), "rolling restart done").empty(); })) << run.err();
    ASSERT_TRUE(wait_until([&] { return lines_with(run.out(), "linger over").size() == 1; })) << run.out();
    EXPECT_TRUE(wait_until([&] { return descriptors() == before; }))
        << "the old worker's pipes are closed once it is gone: " << descriptors() << " descriptors, " << before
        << " before";
    run.signal(SIGTERM);
    ASSERT_EQ(run.wait(), 0) << run.err();

    std::set<std::string> pids;
    int checked = 0;
    for (const std::string& line : split_lines(run.out())) {
        std::map<std::string, std::string> fields;
        ASSERT_TRUE(Json(line).parse_object(fields)) << line;
        const std::size_t at = fields["line"].rfind(" pid=");
        ASSERT_NE(at, std::string::npos) << line;
        EXPECT_EQ(fields["pid"], fields["line"].substr(at + 5)) << "a line attributed to another worker: " << line;
        pids.insert(fields["pid"]);
        ++checked;
    }
    EXPECT_EQ(checked, 6) << "started, bye and linger over from each worker: " << run.out();
    EXPECT_EQ(pids.size(), 2u) << run.out();
}

// Without /proc (a bare chroot, a container that does not mount it) preforkctl cannot reopen its stdout and
// stderr pipes as non-blocking descriptions of its own, and falls back to plain blocking writes. Worker lines,
// long ones too, still arrive whole and prefixed, its own messages reach stderr, and TERM stops it with
// status 0 and no worker left.
TEST(Output, WithoutProcAPipedStdoutAndStderrGetEveryLineWholeAndTermStillStops) {
    if (const std::string why = why_proc_cannot_be_hidden(); !why.empty()) GTEST_SKIP() << why;
    constexpr int kLinesPerWorker = 40;  // up to 64 KiB each: more than a pipe holds
    const auto args = preforkctl({"-n", "2", "--max-line", "131072", "--", PROBE_WORKER_BIN, "--torture",
                                  std::to_string(kLinesPerWorker), "--stderr-lines", "2"});
    {
        // With /proc, each of the two pipes has an O_NONBLOCK description in preforkctl: the check below
        // tells the two ways apart.
        TempDir dir;
        Process run(args, {{"PROBE_DIR=" + dir.path()}});
        ASSERT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 2; })) << run.err();
        EXPECT_GE(nonblocking_descriptors(run.pid(), 1), 1);
        EXPECT_GE(nonblocking_descriptors(run.pid(), 2), 1);
        run.signal(SIGTERM);
        EXPECT_EQ(run.wait(), 0) << run.err();
        EXPECT_THAT(run.err(), Not(HasSubstr("cannot reopen")));
    }
    TempDir dir;
    Options options({"PROBE_DIR=" + dir.path()});
    options.prefix = without_proc();
    Process run(args, options);
    ASSERT_TRUE(wait_until([&] { return report_pids(dir.path()).size() == 2; })) << run.out() << run.err();
    ASSERT_EQ(command_of(run.pid()), "preforkctl") << "the wrapper exec'd preforkctl in its own place";
    EXPECT_EQ(nonblocking_descriptors(run.pid(), 1), 0) << "stdout was reopened: preforkctl saw a /proc";
    EXPECT_EQ(nonblocking_descriptors(run.pid(), 2), 0) << "stderr was reopened: preforkctl saw a /proc";
    const std::vector<pid_t> pids = report_pids(dir.path());
    const auto every_line = static_cast<std::size_t>(2 * kLinesPerWorker);
    ASSERT_TRUE(wait_until([&] {
        const std::string out = run.out();
        return static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n')) >= every_line;
    }))
        << shorten(run.out()) << run.err();
    ASSERT_TRUE(wait_until([&] { return lines_with(run.err(), " | err 2 pid=").size() == 2; })) << run.err();
    run.signal(SIGTERM);
    ASSERT_EQ(run.wait(), 0) << run.err();
    for (const pid_t pid : pids) EXPECT_FALSE(is_alive(pid)) << "worker " << pid << " outlived preforkctl";
    expect_every_torture_line_once(run.out(), pids, kLinesPerWorker);
    const auto worker_errors = lines_with(run.err(), " | err ");
    EXPECT_EQ(worker_errors.size(), 4u) << run.err();
    for (const std::string& line : worker_errors) {
        EXPECT_THAT(line, ::testing::MatchesRegex("probe_worker\\.[01] \\| err [12] pid=[0-9]+")) << run.err();
    }
    EXPECT_THAT(run.err(), HasSubstr("preforkctl: info: starting 2 workers")) << run.err();
    EXPECT_THAT(run.err(), HasSubstr("preforkctl: info: stopping every worker (SIGTERM)")) << run.err();
    // Said once, for both streams: their writes can wait for the reader now.
    const auto warnings = lines_with(run.err(), "cannot reopen");
    ASSERT_EQ(warnings.size(), 1u) << run.err();
    EXPECT_THAT(warnings.front(), ::testing::MatchesRegex("preforkctl: warning: cannot reopen stdout and stderr "
                                                          "through /proc \\(No such file or directory\\): .*wait.*"));
}

// Without /proc preforkctl cannot find what its workers left behind (here a setsid daemon) to stop it. It gives
// such processes the stop timeout to end, then leaves and says so, instead of waiting for them for ever.
TEST(Output, WithoutProcAStopDoesNotWaitForeverForAProcessItCannotFind) {
    if (const std::string why = why_proc_cannot_be_hidden(); !why.empty()) GTEST_SKIP() << why;
    Options options;
    options.prefix = without_proc();
    Process run(preforkctl({"-n", "1", "--stop-timeout", "1s", "--", PROBE_WORKER_BIN, "--daemon"}), options);
    ASSERT_TRUE(wait_until([&] { return !lines_with(run.out(), "| daemon started pid=").empty(); })) << run.err();
    const std::string line = lines_with(run.out(), "| daemon started pid=").front();
    const pid_t daemon = std::stoi(line.substr(line.rfind('=') + 1));
    run.signal(SIGTERM);
    const int status = run.wait(10s);
    const bool daemon_alive = is_alive(daemon);
    ::kill(daemon, SIGKILL);
    EXPECT_EQ(status, 0) << "-1: still waiting for the daemon 10 s after TERM with --stop-timeout 1s\n" << run.err();
    EXPECT_THAT(run.err(), HasSubstr("without /proc, preforkctl cannot find its remaining child processes"));
    EXPECT_TRUE(daemon_alive) << "nothing could stop the daemon, so it must still run";
}

// `exec > >(tee log) 2>&1` in a shell script that then execs preforkctl leaves preforkctl a child it did not
// start: the reader of its own output. preforkctl neither stops it nor waits for it, so that reader gets every
// line, preforkctl's last messages and the workers' last words at stop included.
TEST(Output, AnInheritedChildThatReadsPreforkctlsOutputIsNotStoppedAndMissesNothing) {
    TempDir dir;
    const std::string log = dir.path() + "/log";
    std::vector<std::string> args = {"bash", "-c", "log=$1; shift; exec > >(exec cat >\"$log\") 2>&1; exec \"$@\"",
                                     "bash", log};
    for (const std::string& arg : preforkctl({"-n", "2", "--", PROBE_WORKER_BIN, "--on-term", "200", "--stamp"})) {
        args.push_back(arg);
    }
    Process run(args);
    const auto logged = [&] {
        std::ifstream in(log);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    // "started" comes after the workers' SIGTERM handlers are in place.
    ASSERT_TRUE(wait_until([&] { return lines_with(logged(), "| started at ms").size() == 2; })) << logged();
    ASSERT_EQ(command_of(run.pid()), "preforkctl");
    run.signal(SIGTERM);
    ASSERT_EQ(run.wait(), 0) << logged();
    // The reader ends by itself once preforkctl's end of the pipe is closed, and has then written everything.
    EXPECT_TRUE(wait_until([&] { return lines_with(logged(), "| linger over pid=").size() == 2; })) << logged();
    EXPECT_THAT(logged(), HasSubstr("preforkctl: info: stopping every worker (SIGTERM)"));
}

// A child preforkctl inherited that does not read its output (a shell's background job) is a stray like any
// other: stopped with the workers, and waited for.
TEST(Output, AnInheritedChildThatDoesNotReadTheOutputIsStoppedLikeAnyStray) {
    std::vector<std::string> args = {"bash", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & exec \"$@\"", "bash"};
    for (const std::string& arg : preforkctl({"-n", "1", "--", PROBE_WORKER_BIN})) args.push_back(arg);
    Process run(args);
    pid_t background = 0;
    ASSERT_TRUE(wait_until([&] {
        if (command_of(run.pid()) != "preforkctl") return false;
        for (const pid_t child : children_of(run.pid())) {
            if (command_of(child) == "sleep") background = child;
        }
        return background > 0 && !lines_with(run.err(), "starting 1 worker").empty();
    })) << run.err();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
    EXPECT_FALSE(is_alive(background)) << "the background job outlived preforkctl";
    ::kill(background, SIGKILL);
}
