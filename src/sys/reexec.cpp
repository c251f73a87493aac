#include "sys/reexec.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

extern char** environ;

namespace preforkctl::sys {

namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
    std::vector<char*> pointers;
    pointers.reserve(argv.size() + 1);
    for (const std::string& arg : argv) pointers.push_back(const_cast<char*>(arg.c_str()));
    pointers.push_back(nullptr);
    return pointers;
}

Error errno_error(const std::string& what) { return Error{what + ": " + std::strerror(errno), errno}; }

}  // namespace

Result<Fd> write_memfd(std::string_view bytes) {
    Fd fd(::memfd_create("preforkctl-upgrade-state", MFD_CLOEXEC));
    if (!fd.valid()) return errno_error("cannot create the upgrade state (memfd_create)");
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd.get(), bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return errno_error("cannot write the upgrade state");
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::lseek(fd.get(), 0, SEEK_SET) < 0) return errno_error("cannot rewind the upgrade state");
    return fd;
}

Result<std::string> read_whole_fd(int fd) {
    std::string text;
    char buffer[64 * 1024];
    for (off_t offset = 0;;) {
        const ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("cannot read the upgrade state from fd " + std::to_string(fd));
        if (n == 0) return text;
        text.append(buffer, static_cast<std::size_t>(n));
        offset += n;
    }
}

Result<CheckChild> start_check(const std::vector<std::string>& argv, const std::vector<int>& keep) {
    int output[2];
    if (::pipe2(output, O_CLOEXEC | O_NONBLOCK) != 0) return errno_error("cannot create a pipe");
    Fd read_end(output[0]);
    Fd write_end(output[1]);
    std::vector<char*> args = c_argv(argv);
    const pid_t pid = ::fork();
    if (pid < 0) return errno_error("cannot fork");
    if (pid == 0) {
        // The child: only async-signal-safe calls from here on.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0) ::dup2(null, 0);
        ::dup2(write_end.get(), 1);
        ::dup2(write_end.get(), 2);
        ::fcntl(1, F_SETFL, 0);  // dup2 shares the description: blocking writes for the child
        for (const int fd : keep) ::fcntl(fd, F_SETFD, 0);
        ::execve(args[0], args.data(), environ);
        const char* why = std::strerror(errno);
        (void)!::write(2, why, std::strlen(why));
        ::_exit(127);
    }
    return CheckChild{pid, std::move(read_end)};
}

Error exec_keeping(const std::vector<std::string>& argv, const std::vector<int>& keep) {
    for (const int fd : keep) ::fcntl(fd, F_SETFD, 0);
    std::vector<char*> args = c_argv(argv);
    ::execve(args[0], args.data(), environ);
    Error error = errno_error("cannot execute " + argv[0]);
    for (const int fd : keep) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return error;
}

std::string own_executable() {
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return "";
    return std::string(path, static_cast<std::size_t>(n));
}

std::int64_t monotonic_ns() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace preforkctl::sys
