#include "sys/signals.hpp"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "plan/plan.hpp"

namespace preforkctl::sys {

BlockAllSignals::BlockAllSignals() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous_);
}

BlockAllSignals::~BlockAllSignals() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

sigset_t handled_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGTTIN, SIGTTOU, SIGTSTP, SIGCONT}) {
        sigaddset(&set, sig);
    }
    for (int sig : plan::kForwardedSignals) sigaddset(&set, sig);
    return set;
}

void block_handled_signals() {
    const sigset_t set = handled_signals();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Result<Fd> open_signal_fd() {
    const sigset_t set = handled_signals();
    Fd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd.valid()) return Error{std::string("cannot create a signalfd: ") + std::strerror(errno)};
    return fd;
}

std::vector<SignalInfo> read_signals(int fd) {
    std::vector<SignalInfo> signals;
    signalfd_siginfo info{};
    for (;;) {
        const ssize_t n = ::read(fd, &info, sizeof info);
        if (n < 0 && errno == EINTR) continue;
        if (n != static_cast<ssize_t>(sizeof info)) break;
        signals.push_back(SignalInfo{static_cast<int>(info.ssi_signo), info.ssi_code, static_cast<int>(info.ssi_pid)});
    }
    return signals;
}

}  // namespace preforkctl::sys
