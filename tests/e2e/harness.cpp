#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace e2e {

namespace fs = std::filesystem;

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        if (done()) return true;
        if (std::chrono::steady_clock::now() >= end) return done();
        std::this_thread::sleep_for(10ms);
    }
}

TempDir::TempDir() {
    std::string pattern = (fs::temp_directory_path() / "preforkctl-e2e-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
}

TempDir::~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
}

namespace {

// Every test process gets a runtime directory of its own: the control sockets of preforkctl runs in tests
// that run in parallel would otherwise meet at /run/preforkctl/NAME.sock.
struct OwnRuntimeDirectory {
    OwnRuntimeDirectory() { ::setenv("XDG_RUNTIME_DIR", directory.path().c_str(), 1); }
    TempDir directory;
};
const OwnRuntimeDirectory own_runtime_directory;

}  // namespace

std::string control_socket(const std::string& name) {
    return own_runtime_directory.directory.path() + "/preforkctl/" + name + ".sock";
}

CtlResult ctl(const std::vector<std::string>& args, const std::vector<std::string>& prefix) {
    std::vector<std::string> command = prefix;
    command.push_back(PREFORKCTL_BIN);
    command.push_back("ctl");
    command.insert(command.end(), args.begin(), args.end());
    Process client(command);
    CtlResult result;
    result.status = client.wait(60s);
    result.out = client.out();
    result.err = client.err();
    return result;
}

namespace {

void read_all(int fd, std::mutex& mutex, std::string& into) {
    char buffer[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        std::lock_guard lock(mutex);
        into.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
}

}  // namespace

Process::Process(const std::vector<std::string>& args, const Options& options) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) < 0 || ::pipe2(err_pipe, O_CLOEXEC) < 0) throw std::runtime_error("pipe");
    if (options.stdout_to == StdoutTo::terminal) {
        // The harness reads the terminal's master side; preforkctl gets the slave as its stdout.
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        out_pipe[0] = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (out_pipe[0] < 0 || ::grantpt(out_pipe[0]) < 0 || ::unlockpt(out_pipe[0]) < 0) {
            throw std::runtime_error("pty");
        }
        out_pipe[1] = ::open(::ptsname(out_pipe[0]), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (out_pipe[1] < 0) throw std::runtime_error("pty slave");
    } else if (options.stdout_to == StdoutTo::closed) {
        ::close(out_pipe[0]);
        out_pipe[0] = -1;
    }
    std::vector<std::string> argv_strings = options.prefix;
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    env_strings.insert(env_strings.end(), options.env.begin(), options.env.end());
    std::vector<char*> envp;
    for (auto& entry : env_strings) envp.push_back(entry.data());
    envp.push_back(nullptr);

    pid_ = ::fork();
    if (pid_ == 0) {
        ::setpgid(0, 0);
        ::dup2(out_pipe[1], 1);
        ::dup2(options.stderr_to_stdout ? out_pipe[1] : err_pipe[1], 2);
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        if (options.block_and_ignore_signals) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGUSR1);
            ::sigprocmask(SIG_BLOCK, &set, nullptr);
            ::signal(SIGPIPE, SIG_IGN);
        }
        if (options.leak_fd) {
            ::dup2(devnull, 50);  // dup2 leaves the copy without FD_CLOEXEC: a leaked descriptor
        }
        // Out of the way first (a passed fd may sit at 3 already), then to 3, 4, ... without FD_CLOEXEC.
        for (std::size_t i = 0; i < options.pass_fds.size(); ++i) ::dup2(options.pass_fds[i], 200 + static_cast<int>(i));
        for (std::size_t i = 0; i < options.pass_fds.size(); ++i) {
            ::dup2(200 + static_cast<int>(i), 3 + static_cast<int>(i));
            ::close(200 + static_cast<int>(i));
        }
        ::execvpe(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (options.stdout_to == StdoutTo::unread) {
        unread_fd_ = out_pipe[0];
    } else if (out_pipe[0] >= 0) {
        out_reader_ = std::thread(read_all, out_pipe[0], std::ref(mutex_), std::ref(out_));
    }
    err_reader_ = std::thread(read_all, err_pipe[0], std::ref(mutex_), std::ref(err_));
}

Process::~Process() {
    if (!exited_) {
        ::kill(pid_, SIGKILL);
        wait(5s);
        // A preforkctl killed so removes nothing: its workers' notify socket directory stays (the next one with
        // this pid would clear it). The tests leave none behind.
        std::error_code ignored;
        for (const char* base : {"/run", "/tmp"}) {
            std::filesystem::remove_all(std::string(base) + "/preforkctl-notify." + std::to_string(pid_), ignored);
        }
    }
    // Workers die with preforkctl (PDEATHSIG); their pipes then close and the readers finish.
    if (out_reader_.joinable()) out_reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
    if (unread_fd_ >= 0) ::close(unread_fd_);
}

std::string Process::out() {
    std::lock_guard lock(mutex_);
    return out_;
}

std::string Process::err() {
    std::lock_guard lock(mutex_);
    return err_;
}

void Process::signal(int sig) const { ::kill(pid_, sig); }

int Process::wait(std::chrono::milliseconds deadline) {
    if (exited_) return status_;
    int status = 0;
    const bool done = wait_until(
        [&] {
            const pid_t got = ::waitpid(pid_, &status, WNOHANG);
            return got == pid_;
        },
        deadline);
    if (!done) return -1;
    exited_ = true;
    status_ = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    if (out_reader_.joinable()) out_reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
    return status_;
}

std::vector<std::string> preforkctl(std::vector<std::string> args) {
    args.insert(args.begin(), PREFORKCTL_BIN);
    return args;
}

std::vector<Report> read_reports(const std::string& dir) {
    std::vector<Report> reports;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
        if (entry.path().extension() != ".report") continue;
        std::ifstream in(entry.path());
        Report report;
        std::string line;
        while (std::getline(in, line)) {
            const auto eq = line.find('=');
            if (eq != std::string::npos) report[line.substr(0, eq)] = line.substr(eq + 1);
        }
        reports.push_back(std::move(report));
    }
    return reports;
}

std::vector<Report> wait_for_reports(const std::string& dir, std::size_t count) {
    std::vector<Report> reports;
    static_cast<void>(wait_until([&] {
        reports = read_reports(dir);
        return reports.size() >= count;
    }));
    return reports;
}

int listening_port(const std::string& log) {
    static const std::regex pattern(R"(listening on [^ ]*:(\d+) )");
    std::smatch match;
    if (std::regex_search(log, match, pattern)) return std::stoi(match[1]);
    return 0;
}

int metrics_port(const std::string& log) {
    static const std::regex pattern(R"(serving metrics at http://127\.0\.0\.1:(\d+)/metrics)");
    std::smatch match;
    return std::regex_search(log, match, pattern) ? std::stoi(match[1]) : 0;
}

std::string http_get(int port, const std::string& path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        ::close(fd);
        return "";
    }
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string response;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        response.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    const auto body = response.find("\r\n\r\n");
    return body == std::string::npos ? "" : response.substr(body + 4);
}

HttpReply http_request(int port, const std::string& path, std::chrono::milliseconds deadline) {
    HttpReply reply;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        reply.failure = std::string("socket: ") + std::strerror(errno);
        return reply;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        reply.failure = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
        return reply;
    }
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        reply.failure = std::string("send: ") + std::strerror(errno);
        ::close(fd);
        return reply;
    }
    const auto end = std::chrono::steady_clock::now() + deadline;
    std::string response;
    char buffer[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            reply.failure = "timed out";
            break;
        }
        pollfd readable{fd, POLLIN, 0};
        const int ready = ::poll(&readable, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) continue;  // the deadline check above ends it
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) reply.failure = std::string("recv: ") + std::strerror(errno);
        if (n <= 0) break;
        response.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    const auto head_end = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.", 0) == 0 && response.size() > 12 && head_end != std::string::npos) {
        reply.status = std::atoi(response.c_str() + 9);
        reply.body = response.substr(head_end + 4);
    } else if (reply.failure.empty()) {
        reply.failure = response.empty() ? "closed without an answer" : "not an HTTP answer: " + response;
    }
    return reply;
}

pid_t pid_in_body(const std::string& body) {
    return body.rfind("pid=", 0) == 0 ? static_cast<pid_t>(std::atoi(body.c_str() + 4)) : 0;
}

namespace {

// Fields of /proc/PID/stat after the command name: state is [0], ppid is [1].
// /proc/PID/stat, or "" once the process is gone (a read can fail with ESRCH half-way).
std::string read_stat(pid_t pid) {
    const int fd = ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    char buffer[1024];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
}

std::vector<std::string> stat_fields(pid_t pid) {
    const std::string text = read_stat(pid);
    const auto close = text.rfind(')');
    std::vector<std::string> fields;
    if (close == std::string::npos) return fields;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    while (rest >> field) fields.push_back(field);
    return fields;
}

}  // namespace

char process_state(pid_t pid) {
    const auto fields = stat_fields(pid);
    return fields.empty() || fields[0].empty() ? '?' : fields[0][0];
}

bool is_stopped(pid_t pid) { return process_state(pid) == 'T'; }

pid_t parent_of(pid_t pid) {
    const auto fields = stat_fields(pid);
    return fields.size() > 1 ? std::stoi(fields[1]) : 0;
}

pid_t group_of(pid_t pid) {
    const auto fields = stat_fields(pid);
    return fields.size() > 2 ? std::stoi(fields[2]) : 0;
}

bool is_alive(pid_t pid) {
    const auto fields = stat_fields(pid);
    return !fields.empty() && fields[0] != "Z" && fields[0] != "X";
}

std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
    std::vector<std::string> found;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.find(needle) != std::string::npos) found.push_back(line);
    }
    return found;
}

long status_kib(pid_t pid, const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    }
    return -1;
}

int zombie_children(pid_t parent) {
    int zombies = 0;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto fields = stat_fields(std::stoi(name));
        if (fields.size() > 1 && fields[0] == "Z" && std::stoi(fields[1]) == parent) ++zombies;
    }
    return zombies;
}

std::vector<pid_t> descendants(pid_t ancestor) {
    std::map<pid_t, pid_t> parent_of;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto fields = stat_fields(std::stoi(name));
        if (fields.size() > 1 && fields[0] != "Z") parent_of[std::stoi(name)] = std::stoi(fields[1]);
    }
    std::vector<pid_t> found;
    for (const auto& [pid, parent] : parent_of) {
        for (pid_t up = parent; up > 1;) {
            if (up == ancestor) {
                found.push_back(pid);
                break;
            }
            auto it = parent_of.find(up);
            if (it == parent_of.end()) break;
            up = it->second;
        }
    }
    return found;
}

std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> found;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto fields = stat_fields(std::stoi(name));
        if (fields.size() > 1 && std::stoi(fields[1]) == parent) found.push_back(std::stoi(name));
    }
    return found;
}

int zombies_under(pid_t ancestor) {
    std::map<pid_t, std::pair<pid_t, bool>> processes;  // pid -> (parent, zombie)
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto fields = stat_fields(std::stoi(name));
        if (fields.size() > 1) processes[std::stoi(name)] = {std::stoi(fields[1]), fields[0] == "Z"};
    }
    int zombies = 0;
    for (const auto& [pid, info] : processes) {
        if (!info.second) continue;
        for (pid_t up = info.first; up > 0;) {
            if (up == ancestor) {
                ++zombies;
                break;
            }
            auto it = processes.find(up);
            if (it == processes.end()) break;
            up = it->second.first;
        }
    }
    return zombies;
}

std::vector<pid_t> children_named(pid_t parent, const std::string& command) {
    std::vector<pid_t> found;
    for (const pid_t child : children_of(parent)) {
        if (is_alive(child) && command_of(child) == command) found.push_back(child);
    }
    return found;
}

std::chrono::milliseconds age_of(pid_t pid) {
    const auto fields = stat_fields(pid);
    std::ifstream uptime_file("/proc/uptime");
    double uptime_seconds = 0;
    if (fields.size() <= 19 || !(uptime_file >> uptime_seconds)) return std::chrono::milliseconds(-1);
    // starttime is field 22 of the stat line: index 19 after the command name.
    const double started_seconds = std::stod(fields[19]) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    return std::chrono::milliseconds(static_cast<long>((uptime_seconds - started_seconds) * 1000));
}

std::optional<std::string> environment_of(pid_t pid, const std::string& name) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
    std::string entry;
    while (std::getline(in, entry, '\0')) {
        if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 && entry[name.size()] == '=') {
            return entry.substr(name.size() + 1);
        }
    }
    return std::nullopt;
}

std::string command_of(pid_t pid) {
    std::string name;
    try {
        std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
        std::getline(in, name);
    } catch (const std::exception&) {
        return "";
    }
    return name;
}

namespace {

std::string status_line(pid_t pid, const std::string& key) {
    try {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
        }
    } catch (const std::exception&) {
    }
    return "";
}

}  // namespace

std::string proc_status_field(pid_t pid, const std::string& key) {
    const std::string value = status_line(pid, key);
    const auto start = value.find_first_not_of(" \t");
    return start == std::string::npos ? "" : value.substr(start);
}

bool blocks_or_catches(pid_t pid, int sig) {
    for (const char* key : {"SigBlk", "SigCgt"}) {
        const std::string mask = status_line(pid, key);
        if (mask.find_first_not_of(" \t") == std::string::npos) return false;
        if (((std::stoull(mask, nullptr, 16) >> (sig - 1)) & 1U) != 0) return true;
    }
    return false;
}

bool blocks(pid_t pid, int sig) {
    const std::string mask = status_line(pid, "SigBlk");
    if (mask.find_first_not_of(" \t") == std::string::npos) return false;
    return ((std::stoull(mask, nullptr, 16) >> (sig - 1)) & 1U) != 0;
}

pid_t innermost_pid(pid_t pid) {
    std::istringstream fields(status_line(pid, "NSpid"));
    pid_t last = 0;
    for (pid_t value = 0; fields >> value;) last = value;
    return last;
}

bool on_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    }
    return false;
}

int free_tcp_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
        port = ntohs(address.sin_port);
    }
    ::close(fd);
    return port;
}

std::string fd_target(pid_t pid, int fd) {
    char target[256] = {};
    const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    const ssize_t length = ::readlink(path.c_str(), target, sizeof target - 1);
    return length > 0 ? std::string(target, static_cast<std::size_t>(length)) : std::string();
}

std::vector<pid_t> live_children(pid_t parent) {
    std::vector<pid_t> live;
    for (pid_t child : children_of(parent)) {
        if (process_state(child) != 'Z' && process_state(child) != '?') live.push_back(child);
    }
    return live;
}

namespace {

// How many of the first 256 fds of `pid`, other than `except`, are the socket `target` names.
int fds_holding(pid_t pid, const std::string& target, int except) {
    int count = 0;
    for (int fd = 0; fd < 256; ++fd) {
        if (fd != except && fd_target(pid, fd) == target) ++count;
    }
    return count;
}

}  // namespace

bool serves_the_shared_socket(pid_t supervisor, pid_t pid) {
    const std::string inherited = fd_target(pid, 3);
    if (inherited.rfind("socket:[", 0) != 0 || fds_holding(pid, inherited, 3) == 0) return false;
    return fds_holding(supervisor, inherited, -1) > 0;
}

namespace {

// How many of `count` requests `answers` had answered.
int answered(const std::function<bool(int)>& answers, int port, int count) {
    int yes = 0;
    for (int i = 0; i < count; ++i) yes += answers(port) ? 1 : 0;
    return yes;
}

}  // namespace

void expect_preloaded_pair_serves(Process& run, const std::function<bool(int port)>& answers) {
    int port = 0;
    ASSERT_TRUE(wait_until([&] { return (port = listening_port(run.err())) != 0; })) << run.err();
    std::vector<pid_t> workers;
    ASSERT_TRUE(wait_until([&] {
        workers = live_children(run.pid());
        return workers.size() == 2 && std::all_of(workers.begin(), workers.end(), [&](pid_t pid) {
                   return serves_the_shared_socket(run.pid(), pid);
               });
    }, 20s)) << run.err() << run.out();
    EXPECT_EQ(fd_target(workers[0], 3), fd_target(workers[1], 3));
    EXPECT_EQ(answered(answers, port, 5), 5) << run.err();

    // One worker stopped with TERM: once it is gone, the other answers every request (a connection the
    // dying server itself had accepted is its own to lose), and its replacement holds the socket.
    ASSERT_EQ(::kill(workers[0], SIGTERM), 0);
    ASSERT_TRUE(wait_until([&] { return !is_alive(workers[0]); })) << run.err();
    EXPECT_EQ(answered(answers, port, 5), 5) << run.err();
    pid_t replacement = 0;
    ASSERT_TRUE(wait_until([&] {
        for (pid_t pid : live_children(run.pid())) {
            if (pid != workers[0] && pid != workers[1] && serves_the_shared_socket(run.pid(), pid)) replacement = pid;
        }
        return replacement != 0;
    }, 20s)) << run.err();
    // With the first survivor stopped, only the replacement can answer.
    ASSERT_EQ(::kill(workers[1], SIGSTOP), 0);
    ASSERT_TRUE(wait_until([&] { return is_stopped(workers[1]); }));
    EXPECT_EQ(answered(answers, port, 3), 3) << run.err();
    ::kill(workers[1], SIGCONT);
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

void expect_one_error_line(Process& run, int status, const std::string& message) {
    EXPECT_EQ(run.wait(), status) << run.err();
    const std::string err = run.err();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_EQ(err.rfind("preforkctl: error: ", 0), 0u) << err;
    EXPECT_NE(err.find(message), std::string::npos) << "no \"" << message << "\" in: " << err;
    EXPECT_EQ(run.out(), "");
}

}  // namespace e2e
