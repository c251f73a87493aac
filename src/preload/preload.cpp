// libpreforkctl-preload.so: preforkctl --preload puts it in every worker's LD_PRELOAD (SPEC §13). A bind()
// to one of preforkctl's listeners is served by the inherited listening socket, put on the server's own fd
// number; the calls that would change that shared socket for every worker only change it for this one.
// Without PREFORKCTL_PRELOAD_LISTENERS it forwards every call untouched.
//
// Built without exceptions, RTTI or the C++ runtime. The interposed calls take no lock and allocate
// nothing: the listeners are parsed once at load time into fixed arrays, and the adopted fds live in a
// table of atomics, so each call is as async-signal-safe and thread-safe as the libc call it wraps.

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>

#include "preload/listeners.hpp"

#define PREFORKCTL_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using preforkctl::preload::kMaxListeners;
using preforkctl::preload::kNoFd;
using preforkctl::preload::Listener;

// Adopted fds: 0 = not adopted, else (listener index + 1) << 1, plus 1 when the server wants the fd
// non-blocking. An fd above the table is never adopted (its bind() goes to the kernel unchanged).
constexpr int kTableSize = 1024;
constexpr unsigned kNonBlocking = 1;
std::atomic<unsigned> adopted_fds[kTableSize];

// Written once by the constructor, before the program can start a thread; read-only afterwards.
Listener listeners[kMaxListeners];
ino_t listener_inodes[kMaxListeners];
dev_t listener_devices[kMaxListeners];
int listener_count = 0;

using BindCall = int (*)(int, const sockaddr*, socklen_t);
using ListenCall = int (*)(int, int);
using ShutdownCall = int (*)(int, int);
using AcceptCall = int (*)(int, sockaddr*, socklen_t*);
using Accept4Call = int (*)(int, sockaddr*, socklen_t*, int);
using CloseCall = int (*)(int);
using DupCall = int (*)(int);
using Dup2Call = int (*)(int, int);
using Dup3Call = int (*)(int, int, int);
using FcntlCall = int (*)(int, int, ...);
using IoctlCall = int (*)(int, unsigned long, ...);
using UnlinkCall = int (*)(const char*);
using UnlinkatCall = int (*)(int, const char*, int);

struct NextCalls {
    BindCall bind;
    ListenCall listen;
    ShutdownCall shutdown;
    AcceptCall accept;
    Accept4Call accept4;
    CloseCall close;
    DupCall dup;
    Dup2Call dup2;
    Dup3Call dup3;
    FcntlCall fcntl;
    FcntlCall fcntl64;
    IoctlCall ioctl;
    UnlinkCall unlink;
    UnlinkatCall unlinkat;
};
NextCalls next_calls;

// The next definition of `name` (libc's). Resolved by the constructor; resolved here only when another
// library's constructor calls in before ours has run.
template <class Call>
Call next(Call& slot, const char* name) {
    Call call = __atomic_load_n(&slot, __ATOMIC_ACQUIRE);
    if (call == nullptr) {
        call = reinterpret_cast<Call>(::dlsym(RTLD_NEXT, name));
        __atomic_store_n(&slot, call, __ATOMIC_RELEASE);
    }
    return call;
}

int next_fcntl(int fd, int command, long argument) {
    return next(next_calls.fcntl, "fcntl")(fd, command, argument);
}

unsigned adoption_of(int fd) {
    if (fd < 0 || fd >= kTableSize) return 0;
    return adopted_fds[fd].load(std::memory_order_acquire);
}

void forget(int fd) {
    if (fd >= 0 && fd < kTableSize) adopted_fds[fd].store(0, std::memory_order_release);
}

// The adoption of `from` carried over to `to` (a dup of an adopted fd is the same shared socket).
void carry_over(int from, int to) {
    if (to < 0 || to >= kTableSize) return;
    adopted_fds[to].store(adoption_of(from), std::memory_order_release);
}

bool parse_pid(const char* text, long& pid) {
    if (text == nullptr || *text == '\0') return false;
    pid = 0;
    for (; *text != '\0'; ++text) {
        if (*text < '0' || *text > '9' || pid > 100'000'000) return false;
        pid = pid * 10 + (*text - '0');
    }
    return true;
}

// True while listener `index`'s fd still holds the socket preforkctl passed (the server may have closed it
// and reused the number).
bool still_inherited(int index) {
    struct stat st {};
    return ::fstat(listeners[index].fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == listener_inodes[index] &&
           st.st_dev == listener_devices[index];
}

// Whether a blocking accept() that a signal interrupted would have been restarted by the kernel: only
// when every caught signal was installed with SA_RESTART (the emulation's poll() never restarts).
bool interrupted_call_restarts() {
    for (int sig = 1; sig < NSIG; ++sig) {
        struct sigaction action {};
        if (::sigaction(sig, nullptr, &action) != 0) continue;
        const bool caught = (action.sa_flags & SA_SIGINFO) != 0 ||
                            (action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN);
        if (caught && (action.sa_flags & SA_RESTART) == 0) return false;
    }
    return true;
}

// True when `path` is the path of an inherited unix listener: the file belongs to preforkctl and to every
// worker, so the usual unlink-before-bind (or unlink at exit) of one server must not remove it.
bool is_listener_path(const char* path) {
    if (path == nullptr) return false;
    for (int i = 0; i < listener_count; ++i) {
        if (listeners[i].family == AF_UNIX && listeners[i].fd != kNoFd && __builtin_strcmp(listeners[i].path, path) == 0) {
            return true;
        }
    }
    return false;
}

// accept4() on an adopted fd. The shared description is non-blocking for every worker; a worker that wants
// a blocking accept waits in poll() and tries again when a sibling took the connection first.
int adopted_accept(unsigned adoption, int fd, sockaddr* address, socklen_t* length, int flags) {
    const Accept4Call accept4_call = next(next_calls.accept4, "accept4");
    if ((adoption & kNonBlocking) != 0) return accept4_call(fd, address, length, flags);
    const int saved = errno;
    while (true) {
        const int accepted = accept4_call(fd, address, length, flags);
        if (accepted >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return accepted;
        // SO_RCVTIMEO bounds a blocking accept(); keep that.
        int timeout = -1;
        timeval limit{};
        socklen_t size = sizeof limit;
        if (::getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, &size) == 0 && (limit.tv_sec != 0 || limit.tv_usec != 0)) {
            const long millis = limit.tv_sec * 1000L + limit.tv_usec / 1000L;
            timeout = millis > 2'000'000'000L ? 2'000'000'000 : static_cast<int>(millis < 1 ? 1 : millis);
        }
        pollfd readable{fd, POLLIN, 0};
        const int ready = ::poll(&readable, 1, timeout);
        if (ready == 0) {
            errno = EAGAIN;
            return -1;
        }
        if (ready < 0) {
            if (errno != EINTR || !interrupted_call_restarts()) return -1;
        }
        errno = saved;
    }
}

__attribute__((constructor)) void load_listeners() {
    next(next_calls.bind, "bind");
    next(next_calls.listen, "listen");
    next(next_calls.shutdown, "shutdown");
    next(next_calls.accept, "accept");
    next(next_calls.accept4, "accept4");
    next(next_calls.close, "close");
    next(next_calls.dup, "dup");
    next(next_calls.dup2, "dup2");
    next(next_calls.dup3, "dup3");
    next(next_calls.fcntl, "fcntl");
    next(next_calls.fcntl64, "fcntl64");
    next(next_calls.ioctl, "ioctl");
    next(next_calls.unlink, "unlink");
    next(next_calls.unlinkat, "unlinkat");

    const char* text = ::getenv("PREFORKCTL_PRELOAD_LISTENERS");
    if (text == nullptr) return;
    const int saved = errno;
    Listener parsed[kMaxListeners];
    const int count = preforkctl::preload::parse_listeners(text, parsed, kMaxListeners);
    // Inherited sockets belong to the process preforkctl started (LISTEN_PID), not to a program it runs
    // later with the same environment.
    long pid = 0;
    const bool own_fds = parse_pid(::getenv("LISTEN_PID"), pid) && pid == static_cast<long>(::getpid());
    int kept = 0;
    for (int i = 0; i < count; ++i) {
        struct stat st {};
        if (parsed[i].fd != kNoFd) {
            if (!own_fds || ::fstat(parsed[i].fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        }
        listeners[kept] = parsed[i];
        listener_inodes[kept] = st.st_ino;
        listener_devices[kept] = st.st_dev;
        ++kept;
    }
    listener_count = kept;
    errno = saved;
}

}  // namespace

PREFORKCTL_EXPORT int bind(int fd, const sockaddr* address, socklen_t length) noexcept {
    const BindCall bind_call = next(next_calls.bind, "bind");
    if (listener_count == 0) return bind_call(fd, address, length);
    const int saved = errno;
    int type = 0;
    socklen_t size = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0) {
        errno = saved;
        return bind_call(fd, address, length);
    }
    const int index = preforkctl::preload::match_listener(listeners, listener_count, type, address, length);
    if (index < 0) return bind_call(fd, address, length);
    const Listener& listener = listeners[index];
    if (listener.fd == kNoFd) {
        // child mode: N copies bind the one port themselves.
        const int on = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
        errno = saved;
        return bind_call(fd, address, length);
    }
    if (fd >= kTableSize || fd == listener.fd || !still_inherited(index)) {
        errno = saved;
        return bind_call(fd, address, length);
    }
    const int fd_flags = next_fcntl(fd, F_GETFD, 0);
    const int status_flags = next_fcntl(fd, F_GETFL, 0);
    if (fd_flags < 0 || status_flags < 0) return -1;
    // Every worker's accept() goes through the emulation once the description is non-blocking; setting it
    // again is harmless, so siblings starting together need no agreement.
    const int shared_flags = next_fcntl(listener.fd, F_GETFL, 0);
    if (shared_flags >= 0 && (shared_flags & O_NONBLOCK) == 0) next_fcntl(listener.fd, F_SETFL, shared_flags | O_NONBLOCK);
    if (next(next_calls.dup3, "dup3")(listener.fd, fd, (fd_flags & FD_CLOEXEC) != 0 ? O_CLOEXEC : 0) < 0) return -1;
    const unsigned adoption = (static_cast<unsigned>(index + 1) << 1) | ((status_flags & O_NONBLOCK) != 0 ? kNonBlocking : 0U);
    adopted_fds[fd].store(adoption, std::memory_order_release);
    errno = saved;
    return 0;
}

PREFORKCTL_EXPORT int listen(int fd, int backlog) noexcept {
    // preforkctl chose the backlog of the shared socket; it is already listening.
    if (adoption_of(fd) != 0) return 0;
    return next(next_calls.listen, "listen")(fd, backlog);
}

PREFORKCTL_EXPORT int shutdown(int fd, int how) noexcept {
    const unsigned adoption = adoption_of(fd);
    if (adoption == 0) return next(next_calls.shutdown, "shutdown")(fd, how);
    // Shutting the shared socket down would stop it listening for every worker. This worker gets an unbound,
    // non-listening socket of the same kind on the fd instead: its accept() fails from now on, as after a
    // shutdown of a socket of its own, and the siblings keep accepting.
    const Listener& listener = listeners[(adoption >> 1) - 1];
    const bool non_blocking = (adoption & kNonBlocking) != 0;
    const int replacement = ::socket(listener.family, listener.type | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0), 0);
    if (replacement < 0) return -1;
    const int fd_flags = next_fcntl(fd, F_GETFD, 0);
    forget(fd);
    const int moved = next(next_calls.dup3, "dup3")(replacement, fd, fd_flags > 0 && (fd_flags & FD_CLOEXEC) != 0 ? O_CLOEXEC : 0);
    const int saved = errno;
    next(next_calls.close, "close")(replacement);
    errno = saved;
    return moved < 0 ? -1 : 0;
}

PREFORKCTL_EXPORT int accept(int fd, sockaddr* address, socklen_t* length) {
    const unsigned adoption = adoption_of(fd);
    if (adoption == 0) return next(next_calls.accept, "accept")(fd, address, length);
    return adopted_accept(adoption, fd, address, length, 0);
}

PREFORKCTL_EXPORT int accept4(int fd, sockaddr* address, socklen_t* length, int flags) {
    const unsigned adoption = adoption_of(fd);
    if (adoption == 0) return next(next_calls.accept4, "accept4")(fd, address, length, flags);
    return adopted_accept(adoption, fd, address, length, flags);
}

PREFORKCTL_EXPORT int close(int fd) {
    // Forgotten before the close: once the number is free, another thread may get it from socket().
    if (adoption_of(fd) != 0) forget(fd);
    return next(next_calls.close, "close")(fd);
}

PREFORKCTL_EXPORT int dup(int fd) noexcept {
    const int copy = next(next_calls.dup, "dup")(fd);
    if (copy >= 0 && adoption_of(fd) != 0) carry_over(fd, copy);
    return copy;
}

PREFORKCTL_EXPORT int dup2(int fd, int target) noexcept {
    if (fd == target) return next(next_calls.dup2, "dup2")(fd, target);
    const bool tracked = adoption_of(fd) != 0 || adoption_of(target) != 0;
    const int copy = next(next_calls.dup2, "dup2")(fd, target);
    if (copy >= 0 && tracked) carry_over(fd, copy);
    return copy;
}

PREFORKCTL_EXPORT int dup3(int fd, int target, int flags) noexcept {
    const bool tracked = fd != target && (adoption_of(fd) != 0 || adoption_of(target) != 0);
    const int copy = next(next_calls.dup3, "dup3")(fd, target, flags);
    if (copy >= 0 && tracked) carry_over(fd, copy);
    return copy;
}

namespace {

// fcntl() and fcntl64() (what programs built with _FILE_OFFSET_BITS=64 call): O_NONBLOCK of an adopted fd
// is this worker's wish, kept in the table; the shared description stays non-blocking.
int interposed_fcntl(FcntlCall call, int fd, int command, long argument) {
    const unsigned adoption = adoption_of(fd);
    if (adoption == 0) return call(fd, command, argument);
    switch (command) {
        case F_GETFL: {
            const int flags = call(fd, command, argument);
            if (flags < 0) return flags;
            return (flags & ~O_NONBLOCK) | ((adoption & kNonBlocking) != 0 ? O_NONBLOCK : 0);
        }
        case F_SETFL: {
            const int result = call(fd, command, argument | O_NONBLOCK);
            if (result == 0) {
                adopted_fds[fd].store((adoption & ~kNonBlocking) | ((argument & O_NONBLOCK) != 0 ? kNonBlocking : 0U),
                                      std::memory_order_release);
            }
            return result;
        }
        case F_DUPFD:
        case F_DUPFD_CLOEXEC: {
            const int copy = call(fd, command, argument);
            if (copy >= 0) carry_over(fd, copy);
            return copy;
        }
        default:
            return call(fd, command, argument);
    }
}

}  // namespace

PREFORKCTL_EXPORT int fcntl(int fd, int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    const long argument = va_arg(arguments, long);  // every fcntl argument fits in a long (int or pointer)
    va_end(arguments);
    return interposed_fcntl(next(next_calls.fcntl, "fcntl"), fd, command, argument);
}

PREFORKCTL_EXPORT int fcntl64(int fd, int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    const long argument = va_arg(arguments, long);
    va_end(arguments);
    return interposed_fcntl(next(next_calls.fcntl64, "fcntl64"), fd, command, argument);
}

PREFORKCTL_EXPORT int ioctl(int fd, unsigned long request, ...) noexcept {
    va_list arguments;
    va_start(arguments, request);
    void* argument = va_arg(arguments, void*);
    va_end(arguments);
    const unsigned adoption = adoption_of(fd);
    if (adoption != 0 && request == FIONBIO && argument != nullptr) {
        const bool non_blocking = *static_cast<const int*>(argument) != 0;
        adopted_fds[fd].store((adoption & ~kNonBlocking) | (non_blocking ? kNonBlocking : 0U), std::memory_order_release);
        return 0;
    }
    return next(next_calls.ioctl, "ioctl")(fd, request, argument);
}

PREFORKCTL_EXPORT int unlink(const char* path) noexcept {
    if (listener_count != 0 && is_listener_path(path)) return 0;
    return next(next_calls.unlink, "unlink")(path);
}

PREFORKCTL_EXPORT int unlinkat(int directory, const char* path, int flags) noexcept {
    if (listener_count != 0 && (directory == AT_FDCWD || path[0] == '/') && is_listener_path(path)) {
        return 0;
    }
    return next(next_calls.unlinkat, "unlinkat")(directory, path, flags);
}
