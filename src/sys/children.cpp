#include "sys/children.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

namespace preforkctl::sys {

bool has_children() {
    siginfo_t info{};
    return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

std::optional<std::vector<pid_t>> child_pids() {
    // The supervisor is single-threaded, so its main thread's list holds every child (CONFIG_PROC_CHILDREN,
    // enabled in distribution kernels).
    const std::string self = std::to_string(::getpid());
    std::ifstream in("/proc/" + self + "/task/" + self + "/children");
    if (!in) return std::nullopt;
    std::vector<pid_t> pids;
    long pid = 0;
    while (in >> pid) pids.push_back(static_cast<pid_t>(pid));
    return pids;
}

std::vector<pid_t> sharing_output_pipe(const std::vector<pid_t>& pids) {
    std::vector<std::pair<dev_t, ino_t>> pipes;
    for (const int fd : {STDOUT_FILENO, STDERR_FILENO}) {
        struct stat about {};
        if (::fstat(fd, &about) == 0 && S_ISFIFO(about.st_mode)) pipes.emplace_back(about.st_dev, about.st_ino);
    }
    std::vector<pid_t> sharing;
    if (pipes.empty()) return sharing;
    for (const pid_t pid : pids) {
        std::error_code error;
        const std::filesystem::path fds = "/proc/" + std::to_string(pid) + "/fd";
        for (const auto& entry : std::filesystem::directory_iterator(fds, error)) {
            struct stat about {};
            if (::stat(entry.path().c_str(), &about) != 0 || !S_ISFIFO(about.st_mode)) continue;
            if (std::find(pipes.begin(), pipes.end(), std::pair{about.st_dev, about.st_ino}) != pipes.end()) {
                sharing.push_back(pid);
                break;
            }
        }
    }
    return sharing;
}

void let_output_readers_finish(std::set<pid_t> readers, std::chrono::milliseconds limit) {
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        ::close(null);
    } else {
        ::close(STDOUT_FILENO);
        ::close(STDERR_FILENO);
    }
    // SIGCHLD is blocked (the supervisor read it from a signalfd): wait for it with sigtimedwait.
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!readers.empty()) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            readers.erase(pid);
            continue;
        }
        if (pid < 0 && errno != EINTR) return;  // ECHILD: nothing left to wait for
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) return;
        // At most 100 ms at a time: a SIGCHLD that came before this call is pending already, not lost.
        const auto wait = std::min<std::chrono::nanoseconds>(left, std::chrono::milliseconds(100));
        const timespec timeout{static_cast<time_t>(wait.count() / 1000000000),
                               static_cast<long>(wait.count() % 1000000000)};
        ::sigtimedwait(&child, nullptr, &timeout);
    }
}

}  // namespace preforkctl::sys
