// preforkctl on a terminal (SPEC §7, job control): ^C stops it cleanly, ^Z stops and SIGCONT resumes every
// worker with it, and in the background on a "stty tostop" terminal it is never stopped by SIGTTOU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "harness.hpp"

using namespace e2e;

namespace {


// A program on the slave side of a new pseudo-terminal, as its session leader and foreground job.
class OnTerminal {
public:
    /// `background`: the session leader sets "stty tostop" and runs the program in a background process
    /// group of the terminal, as a shell does for "program &".
    OnTerminal(const std::vector<std::string>& args, bool background) {
        pid_ = ::forkpty(&master_, nullptr, nullptr, nullptr);
        if (pid_ != 0) return;
        std::vector<char*> argv;
        for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        if (!background) {
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        termios mode{};
        ::tcgetattr(STDIN_FILENO, &mode);
        mode.c_lflag |= TOSTOP;
        ::tcsetattr(STDIN_FILENO, TCSANOW, &mode);
        const pid_t job = ::fork();
        if (job == 0) {
            ::setpgid(0, 0);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        int status = 0;
        ::waitpid(job, &status, 0);
        ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    ~OnTerminal() {
        if (!exited_) {
            for (pid_t pid : descendants(pid_)) ::kill(pid, SIGKILL);
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(master_);
    }
    OnTerminal(const OnTerminal&) = delete;
    OnTerminal& operator=(const OnTerminal&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    /// Everything the terminal showed so far.
    const std::string& screen() {
        pollfd ready{master_, POLLIN, 0};
        char buffer[4096];
        while (::poll(&ready, 1, 0) == 1 && (ready.revents & POLLIN) != 0) {
            const ssize_t n = ::read(master_, buffer, sizeof buffer);
            if (n <= 0) break;
            screen_.append(buffer, static_cast<std::size_t>(n));
        }
        return screen_;
    }
    /// Types `keys` on the terminal.
    void type(const std::string& keys) const { (void)::write(master_, keys.data(), keys.size()); }
    /// Waits for the session leader's exit; its status, or -1 on timeout.
    int wait(std::chrono::milliseconds deadline = 20s) {
        int status = 0;
        const bool done = wait_until([&] {
            screen();  // keep the terminal drained so nothing blocks on it
            return ::waitpid(pid_, &status, WNOHANG) == pid_;
        }, deadline);
        if (!done) return -1;
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    int master_ = -1;
    pid_t pid_ = -1;
    bool exited_ = false;
    std::string screen_;
};

// tty_nr, field 7 of /proc/PID/stat: the controlling terminal's device number, 0 when there is none.
long controlling_tty(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string state;
    long parent = 0, group = 0, session = 0, tty = -1;
    fields >> state >> parent >> group >> session >> tty;
    return tty;
}

std::vector<pid_t> worker_pids(const std::string& screen) {
    static const std::regex pattern(R"(\| (?:\x1b\[0m)?worker pid=(\d+))");
    std::vector<pid_t> pids;
    for (auto it = std::sregex_iterator(screen.begin(), screen.end(), pattern); it != std::sregex_iterator(); ++it) {
        pids.push_back(std::stoi((*it)[1]));
    }
    return pids;
}

}  // namespace

// Research §6 A17, deliberately different: N copies cannot all be the terminal's foreground job, so the
// workers run in sessions of their own without a controlling terminal (stdin is /dev/null); ^C reaches
// preforkctl alone, which stops them gracefully, and that requested stop exits 0 (not 130).
TEST(Terminal, CtrlCStopsEveryWorkerGracefullyAndExitsZero) {
    OnTerminal term({PREFORKCTL_BIN, "-n", "2", "--", NOTIFY_WORKER_BIN}, false);
    ASSERT_TRUE(wait_until([&] { return worker_pids(term.screen()).size() == 2; })) << term.screen();
    EXPECT_NE(controlling_tty(term.pid()), 0);
    for (pid_t pid : worker_pids(term.screen())) EXPECT_EQ(controlling_tty(pid), 0) << "worker " << pid;
    term.type("\x03");
    EXPECT_EQ(term.wait(), 0) << term.screen();
    EXPECT_TRUE(wait_until([&] { return lines_with(term.screen(), "bye pid=").size() == 2; })) << term.screen();
    for (pid_t pid : worker_pids(term.screen())) EXPECT_FALSE(is_alive(pid));
}

TEST(Terminal, CtrlZStopsTheWorkersWithPreforkctlAndSigcontResumesThemAll) {
    OnTerminal term({PREFORKCTL_BIN, "-n", "2", "--", NOTIFY_WORKER_BIN}, false);
    ASSERT_TRUE(wait_until([&] { return worker_pids(term.screen()).size() == 2; })) << term.screen();
    const std::vector<pid_t> workers = worker_pids(term.screen());
    const auto all_in = [&](bool stopped) {
        bool all = (process_state(term.pid()) == 'T') == stopped;
        for (pid_t pid : workers) all = all && (process_state(pid) == 'T') == stopped;
        return all;
    };
    term.type("\x1a");
    ASSERT_TRUE(wait_until([&] { return all_in(true); })) << term.screen();
    ::kill(term.pid(), SIGCONT);  // what "fg" does
    ASSERT_TRUE(wait_until([&] { return all_in(false); })) << term.screen();
    term.type("\x03");
    EXPECT_EQ(term.wait(), 0) << term.screen();
}

TEST(Terminal, InTheBackgroundOnATostopTerminalPreforkctlIsNeverStopped) {
    OnTerminal term({PREFORKCTL_BIN, "-v", "-n", "1", "--", NOTIFY_WORKER_BIN}, true);
    // preforkctl and its worker's lines reach the terminal although preforkctl is a background job there.
    ASSERT_TRUE(wait_until([&] { return worker_pids(term.screen()).size() == 1; })) << term.screen();
    pid_t preforkctl = 0;
    for (pid_t pid : descendants(term.pid())) {
        if (parent_of(pid) == term.pid()) preforkctl = pid;
    }
    ASSERT_NE(preforkctl, 0);
    ::kill(preforkctl, SIGTTIN);  // more to write: a second worker and its lines
    ASSERT_TRUE(wait_until([&] { return worker_pids(term.screen()).size() == 2; })) << term.screen();
    // A SIGTTOU would have stopped preforkctl at its first write to the terminal, before that line got there.
    EXPECT_NE(process_state(preforkctl), 'T') << "stopped by SIGTTOU";
    ::kill(preforkctl, SIGTERM);
    EXPECT_EQ(term.wait(), 0) << term.screen();
}

// Research §6 A18: started as the session leader of a terminal, preforkctl does not hand the terminal over with
// TIOCNOTTY (whose SIGHUP/SIGCONT would reach the workers and itself): no worker sees a SIGHUP at start-up and
// no rolling restart begins. A USR1 sent afterwards marks the point by which a start-up HUP would have shown.
TEST(Terminal, AsSessionLeaderNoHangupReachesTheWorkersAtStartUp) {
    TempDir dir;
    const std::string probe_dir = "PROBE_DIR=" + dir.path();
    OnTerminal term({"/usr/bin/env", probe_dir, PREFORKCTL_BIN, "-v", "-n", "2", "--", PROBE_WORKER_BIN,
                     "--echo-signals"},
                    false);
    ASSERT_TRUE(wait_until([&] { return lines_with(term.screen(), "echoing signals").size() == 2; }))
        << term.screen();
    ::kill(term.pid(), SIGUSR1);
    ASSERT_TRUE(wait_until([&] { return lines_with(term.screen(), "signal SIGUSR1").size() == 2; })) << term.screen();
    EXPECT_TRUE(lines_with(term.screen(), "signal SIGHUP").empty()) << term.screen();
    EXPECT_TRUE(lines_with(term.screen(), "rolling restart").empty()) << term.screen();
    term.type("\x03");
    EXPECT_EQ(term.wait(), 0) << term.screen();
}
