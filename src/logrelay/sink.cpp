#include "logrelay/sink.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <string>

namespace preforkctl::logrelay {

namespace {

// One write of up to two buffers; for a socket with MSG_DONTWAIT so that only this call is non-blocking.
ssize_t write_two(int fd, SinkKind kind, std::string_view first, std::string_view second) {
    iovec parts[2] = {{const_cast<char*>(first.data()), first.size()},
                      {const_cast<char*>(second.data()), second.size()}};
    const int count = second.empty() ? 1 : 2;
    if (kind == SinkKind::socket) {
        msghdr message{};
        message.msg_iov = parts;
        message.msg_iovlen = static_cast<std::size_t>(count);
        return ::sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    return ::writev(fd, parts, count);
}

// The lines at the start of `bytes` that fit into PIPE_BUF together, or the first line alone when it is longer.
std::string_view whole_lines_of(std::string_view bytes) {
    const std::size_t end = bytes.substr(0, PIPE_BUF).rfind('\n');
    if (end != std::string_view::npos) return bytes.substr(0, end + 1);
    const std::size_t first = bytes.find('\n');
    return first == std::string_view::npos ? bytes : bytes.substr(0, first + 1);
}

}  // namespace

WriteOutcome OutputSink::write_some() {
    for (;;) {
        if (written_ == writing_.size()) {
            // The buffer being written is done: the filling one takes its place (no copy, capacity kept).
            writing_.clear();
            written_ = 0;
            writing_.swap(filling_);
        }
        if (writing_.empty()) return WriteOutcome::all_written;
        if (kind_ == SinkKind::closed) {
            const std::string_view unwritten(writing_.data() + written_, writing_.size() - written_);
            discarded_lines_ += static_cast<std::size_t>(std::count(unwritten.begin(), unwritten.end(), '\n'));
            const std::string_view behind = filling_.view();
            discarded_lines_ += static_cast<std::size_t>(std::count(behind.begin(), behind.end(), '\n'));
            writing_.clear();
            filling_.clear();
            written_ = 0;
            return WriteOutcome::broken;
        }
        std::string_view first(writing_.data() + written_, writing_.size() - written_);
        std::string_view second = filling_.view();
        if (whole_lines_) {
            first = whole_lines_of(first);
            second = {};
        }
        const ssize_t n = write_two(fd_.get(), kind_, first, second);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return WriteOutcome::would_block;
            // EPIPE (the reader is gone), EBADF, ENOSPC, EIO: nothing more can be written here.
            error_ = errno;
            kind_ = SinkKind::closed;
            fd_.reset();
            continue;
        }
        auto done = static_cast<std::size_t>(n);
        const std::size_t from_first = std::min(done, first.size());
        written_ += from_first;
        done -= from_first;
        if (done > 0) {
            // The write reached into the filling buffer: what is left of it becomes the writing buffer.
            writing_.clear();
            writing_.swap(filling_);
            written_ = done;
        }
    }
}

bool OutputSink::wait_writable(int timeout_ms) const {
    if (kind_ != SinkKind::nonblocking && kind_ != SinkKind::socket) return true;
    pollfd entry{fd_.get(), POLLOUT, 0};
    return ::poll(&entry, 1, timeout_ms) > 0;
}

OutputSink open_sink(int fd, const char* proc_fd_dir) {
    struct stat about {};
    if (::fstat(fd, &about) < 0) return OutputSink();
    const bool terminal = ::isatty(fd) == 1;
    if (S_ISREG(about.st_mode) || S_ISBLK(about.st_mode) || (S_ISCHR(about.st_mode) && !terminal)) {
        // A file or /dev/null takes every write without waiting for a reader; a plain dup will do.
        return OutputSink(sys::Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 3)), SinkKind::direct);
    }
    if (S_ISSOCK(about.st_mode)) {
        // systemd's journal stream. A socket cannot be reopened, and O_NONBLOCK (or Asio's FIONBIO) on our
        // dup would switch the description we share with others; MSG_DONTWAIT is per call instead.
        return OutputSink(sys::Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 3)), SinkKind::socket);
    }
    if (S_ISFIFO(about.st_mode) || terminal) {
        // O_NONBLOCK on fd 1 itself would change the open file description preforkctl shares with its
        // parent shell, the other commands of a pipeline and (--log-format inherit) its workers, which
        // would then see EAGAIN. Opening /proc/self/fd/N creates a new description of the same pipe or
        // terminal that is ours alone, so it can be non-blocking and watched by the event loop.
        const std::string path = std::string(proc_fd_dir) + "/" + std::to_string(fd);
        const int flags = ::fcntl(fd, F_GETFL);
        const int append = flags >= 0 ? (flags & O_APPEND) : 0;
        const int own = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | append);
        if (own >= 0) {
            if (S_ISFIFO(about.st_mode)) {
                // A bigger pipe (1 MiB, the default limit for unprivileged processes) means fewer EAGAIN and
                // wake-up rounds for us and the reader; the reader only gains buffer. Best effort.
                (void)::fcntl(own, F_SETPIPE_SZ, 1024 * 1024);
            }
            return OutputSink(sys::Fd(own), SinkKind::nonblocking);
        }
        if (errno == ENXIO) return OutputSink();  // a FIFO whose reader is gone
        // No /proc (a bare chroot), or the reopen is refused: plain writes, which can wait when the reader
        // stalls. The caller says so.
        const int error = errno;
        return OutputSink(sys::Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 3)), SinkKind::blocking, error);
    }
    return OutputSink(sys::Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 3)), SinkKind::blocking);
}

bool same_file(int a, int b) {
    struct stat first {};
    struct stat second {};
    return ::fstat(a, &first) == 0 && ::fstat(b, &second) == 0 && first.st_dev == second.st_dev &&
           first.st_ino == second.st_ino;
}

}  // namespace preforkctl::logrelay
