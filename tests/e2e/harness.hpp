#pragma once
// End-to-end test harness: runs the real preforkctl binary, collects its output, polls with deadlines.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace e2e {

using namespace std::chrono_literals;
using Report = std::map<std::string, std::string>;

/// Polls `done` every 10 ms until it is true or `deadline` passes; returns its last value, which a test must
/// assert on (a wait whose outcome nobody checks lets the test pass whatever happened).
[[nodiscard]] bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds deadline = 10s);

/// A temporary directory, removed with its content at destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// What preforkctl's stdout is connected to.
enum class StdoutTo {
    captured,  // a pipe read by the harness (out())
    unread,    // a pipe that nobody reads until the test reads stdout_reader() itself
    closed,    // a pipe whose read end is already closed: every write fails with EPIPE
    terminal,  // a pseudo-terminal, read by the harness (out(); newlines arrive as "\r\n")
};

/// How to start preforkctl.
struct Options {
    Options() = default;
    Options(std::vector<std::string> extra_env) : env(std::move(extra_env)) {}  // NOLINT: implicit on purpose

    std::vector<std::string> env;         // extra "K=V" for preforkctl's environment
    std::vector<std::string> prefix;      // wrapper command, e.g. {"taskset", "-c", "1"}
    bool block_and_ignore_signals = false;  // start with SIGUSR1 blocked and SIGPIPE ignored (tini's sigconf test)
    bool leak_fd = false;                  // start with an extra fd (non-CLOEXEC) open at 50
    std::vector<int> pass_fds;             // given to the program as fds 3, 4, ... (socket activation by hand)
    StdoutTo stdout_to = StdoutTo::captured;
    bool stderr_to_stdout = false;         // 2>&1: stderr is the same pipe as stdout
};

/// A running preforkctl (or other program) with its stdout/stderr captured.
class Process {
public:
    Process(const std::vector<std::string>& args, const Options& options = {});
    ~Process();  // SIGKILLs whatever is left
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    std::string out();
    std::string err();
    void signal(int sig) const;
    /// Waits for the exit; returns the shell-style status (code, or 128+signal), or -1 on timeout.
    int wait(std::chrono::milliseconds deadline = 20s);
    [[nodiscard]] bool exited() const { return exited_; }
    /// With StdoutTo::unread: the read end of preforkctl's stdout pipe (owned by the Process).
    [[nodiscard]] int stdout_reader() const { return unread_fd_; }

private:
    pid_t pid_ = -1;
    int unread_fd_ = -1;
    bool exited_ = false;
    int status_ = -1;
    std::mutex mutex_;
    std::string out_;
    std::string err_;
    std::thread out_reader_;
    std::thread err_reader_;
};

/// Starts preforkctl with `args`.
std::vector<std::string> preforkctl(std::vector<std::string> args);

/// Runs `preforkctl ctl ARGS` to its end and returns {exit status, stdout, stderr}.
struct CtlResult {
    int status = -1;
    std::string out;
    std::string err;
};
CtlResult ctl(const std::vector<std::string>& args, const std::vector<std::string>& prefix = {});

/// The control socket preforkctl --name NAME listens on in a test: every test process has a runtime
/// directory of its own ($XDG_RUNTIME_DIR, set by the harness), so parallel tests never share one.
std::string control_socket(const std::string& name);

/// Reads PROBE_DIR reports ("<pid>.report") written by probe_worker.
std::vector<Report> read_reports(const std::string& dir);
/// Waits (10 s at most) until `dir` holds at least `count` reports and returns them; callers assert on the
/// reports they got, which says more than a bare timeout would.
std::vector<Report> wait_for_reports(const std::string& dir, std::size_t count);

/// The port of the first "listening on HOST:PORT" line in preforkctl's log, or 0.
int listening_port(const std::string& log);

/// The port of preforkctl's "serving metrics at http://127.0.0.1:PORT/metrics" line, or 0.
int metrics_port(const std::string& log);

/// A GET / on 127.0.0.1:port with a fresh connection; returns the body, or "" on failure.
std::string http_get(int port, const std::string& path = "/");

/// The outcome of one HTTP request: the status code of the answer (0 when there was none), its body, and
/// why it failed ("connect: Connection refused", "recv: Connection reset by peer", "timed out", ...).
struct HttpReply {
    int status = 0;
    std::string body;
    std::string failure;
};

/// A GET of `path` on 127.0.0.1:port with a fresh connection that waits `deadline` at most for the answer.
HttpReply http_request(int port, const std::string& path = "/", std::chrono::milliseconds deadline = 10s);

/// The pid in an answer body "pid=PID ...", or 0.
pid_t pid_in_body(const std::string& body);

/// True when `pid` exists and is not a zombie.
bool is_alive(pid_t pid);

/// Lines of `text` that contain `needle`.
std::vector<std::string> lines_with(const std::string& text, const std::string& needle);

/// State letter of `pid` from /proc/PID/stat (R, S, T, Z, ...), or '?' when it is gone.
char process_state(pid_t pid);

/// True when `pid` is stopped (SIGSTOP, SIGTSTP): state T in /proc/PID/stat.
bool is_stopped(pid_t pid);

/// Parent pid of `pid` (zombies included), or 0 when it does not exist.
pid_t parent_of(pid_t pid);

/// Process group of `pid`, or 0.
pid_t group_of(pid_t pid);

// Whether the preforkctl under test runs under ASan+UBSan (tests/run.sh --sanitize). The tests and fixtures
// themselves are never instrumented, so this comes from the build (PREFORKCTL_SANITIZED), not the compiler.
inline constexpr bool kSanitizedBuild = PREFORKCTL_SANITIZED;

/// A "NAME:   N kB" line of /proc/PID/status (VmRSS, VmHWM, ...) in KiB, or -1.
long status_kib(pid_t pid, const std::string& field);

/// Number of zombie children of `parent`.
int zombie_children(pid_t parent);

/// Descendant pids (children, grandchildren, ...) of `ancestor`, from /proc.
std::vector<pid_t> descendants(pid_t ancestor);

/// Children of `parent` (zombies included), from /proc.
std::vector<pid_t> children_of(pid_t parent);

/// Zombies anywhere below `ancestor` (children, grandchildren, ...).
int zombies_under(pid_t ancestor);

/// Live (not zombie) children of `parent` whose command name is `command`.
std::vector<pid_t> children_named(pid_t parent, const std::string& command);

/// How long ago `pid` was forked (/proc/PID/stat starttime against /proc/uptime, 10 ms steps), or -1 ms.
std::chrono::milliseconds age_of(pid_t pid);

/// The value of a "KEY:" line of /proc/PID/status without its leading blanks (e.g. Cpus_allowed_list), or "".
std::string proc_status_field(pid_t pid, const std::string& key);

/// The value of NAME in the environment `pid` was started with (/proc/PID/environ); nullopt when unset.
std::optional<std::string> environment_of(pid_t pid, const std::string& name);

/// The command name of `pid` (/proc/PID/comm), or "".
std::string command_of(pid_t pid);

/// True when `pid` blocks or catches `sig` (SigBlk or SigCgt of /proc/PID/status): a signal sent now is
/// not dropped by a PID 1 nor fatal by default action.
bool blocks_or_catches(pid_t pid, int sig);

/// True when `pid` blocks `sig` (SigBlk of /proc/PID/status). Unlike what it catches, the mask of a process
/// in execve is never a leftover of the program it replaces.
bool blocks(pid_t pid, int sig);

/// The pid that `pid` has in the innermost PID namespace it belongs to (last NSpid field), or 0.
pid_t innermost_pid(pid_t pid);

/// True when `program` is an executable file in a directory of $PATH.
bool on_path(const std::string& program);

/// A TCP port of 127.0.0.1 that nothing listens on right now (the kernel's choice of an ephemeral port),
/// for modes that need a fixed port. 0 when none could be found.
int free_tcp_port();

/// The target of /proc/PID/fd/FD ("socket:[123]"), or "".
std::string fd_target(pid_t pid, int fd);

/// Children of `parent` that are neither zombies nor gone.
std::vector<pid_t> live_children(pid_t parent);

/// True when worker `pid` serves preforkctl's listener on a descriptor of its own (--preload): besides fd 3
/// (inherited) another of its fds is the same socket, and preforkctl (`supervisor`) holds that socket too.
bool serves_the_shared_socket(pid_t supervisor, pid_t pid);

/// The --preload check of one unmodified server, run as `preforkctl -n 2 --preload -l HOST:0`, that
/// `answers(port)` asks one request of: both workers hold the one shared socket and answer; with one
/// stopped by SIGTERM and gone, the other answers every request; its replacement holds the socket and answers alone
/// (the survivor SIGSTOPped); preforkctl then stops with status 0.
void expect_preloaded_pair_serves(Process& run, const std::function<bool(int port)>& answers);

/// preforkctl refused to start: it exits with `status`, its stderr is exactly one "preforkctl: error: ..."
/// line that holds `message`, and it wrote nothing to stdout.
void expect_one_error_line(Process& run, int status, const std::string& message);

}  // namespace e2e
