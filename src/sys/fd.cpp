#include "sys/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace preforkctl::sys {

void Fd::reset(int fd) {
    if (fd_ >= 0) {
        ::close(fd_);  // close() errors are not actionable; Linux releases the fd even on EINTR
    }
    fd_ = fd;
}

Fd leave_working_directory() {
    Fd directory(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (directory.valid() && ::chdir("/") < 0) {
        return Fd();  // still where we were: the workers simply inherit it
    }
    return directory;
}

Result<Pipe> make_pipe(int extra_flags) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | extra_flags) < 0) {
        return errno_error("cannot create a pipe");
    }
    return Pipe{Fd(fds[0]), Fd(fds[1])};
}

Status set_nonblocking(int fd, bool on) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) {
        return errno_error("fcntl(F_GETFL)");
    }
    const int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) < 0) {
        return errno_error("fcntl(F_SETFL)");
    }
    return Ok{};
}

void ensure_standard_fds_open() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) < 0) {
            // Opening returns the lowest free number, which is exactly this one.
            ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        }
    }
}

}  // namespace preforkctl::sys
