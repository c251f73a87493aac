#include "spawn/child_fds.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace preforkctl::spawn {

namespace {

// A record of getdents64 (struct linux_dirent64): u64 inode, s64 offset, u16 record length, u8 type, then
// the NUL-terminated name.
constexpr std::size_t kRecordLengthAt = 16;
constexpr std::size_t kNameAt = 19;

// The descriptor a /proc/self/fd entry names, or -1 for "." and "..".
int parse_fd(const char* name) {
    if (*name < '0' || *name > '9') return -1;
    long value = 0;
    for (; *name >= '0' && *name <= '9'; ++name) {
        value = value * 10 + (*name - '0');
        if (value > INT_MAX) return -1;
    }
    return *name == '\0' ? static_cast<int>(value) : -1;
}

// False when /proc is not there (or the listing failed): the caller then tries every number instead.
bool mark_listed_fds(int first) {
    const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return false;
    alignas(8) char buffer[4096];
    for (;;) {
        const long got = ::syscall(SYS_getdents64, dir, buffer, sizeof buffer);
        if (got < 0) {
            ::close(dir);
            return false;
        }
        if (got == 0) break;
        for (long at = 0; at < got;) {
            const char* entry = buffer + at;
            unsigned short length = 0;
            std::memcpy(&length, entry + kRecordLengthAt, sizeof length);
            if (length == 0) break;  // never from the kernel; no endless loop if it did
            at += length;
            const int fd = parse_fd(entry + kNameAt);
            if (fd >= first && fd != dir) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    ::close(dir);
    return true;
}

// Without /proc: every number a descriptor can have. The hard limit, not the soft one: descriptors opened
// under a higher soft limit stay open when it is lowered (as it is for the workers).
void mark_every_number_from(int first) {
    struct {
        std::uint64_t soft;
        std::uint64_t hard;
    } limit{};
    std::uint64_t last = 65536;
    if (::syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &limit) == 0) {
        last = limit.hard < static_cast<std::uint64_t>(INT_MAX) ? limit.hard : static_cast<std::uint64_t>(INT_MAX);
    }
    for (std::uint64_t fd = static_cast<std::uint64_t>(first); fd < last; ++fd) {
        ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    }
}

}  // namespace

void fail_in_child(int report_fd, LaunchStage stage) {
    const ChildReport report{static_cast<int>(stage), errno};
    [[maybe_unused]] auto written = ::write(report_fd, &report, sizeof report);
    ::_exit(127);
}

int lift_report_fd(int report_fd, int floor) {
    if (report_fd >= floor) return report_fd;
    const int lifted = ::fcntl(report_fd, F_DUPFD_CLOEXEC, floor);
    // The original is still the pipe (nothing has been moved onto it yet): the parent learns why.
    if (lifted < 0) fail_in_child(report_fd, LaunchStage::fds);
    return lifted;
}

void close_on_exec_from(int first) {
    // The C library's syscall(), not an inline one: an LD_PRELOAD shim can then fail it, as an old kernel
    // (ENOSYS before 5.9, EINVAL for the flag before 5.11) or a seccomp filter (ENOSYS, EPERM) does.
    if (::syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
    if (!mark_listed_fds(first)) mark_every_number_from(first);
}

}  // namespace preforkctl::spawn
