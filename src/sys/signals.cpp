#include "sys/signals.hpp"

#include <pthread.h>

#include <initializer_list>

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
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH}) {
        sigaddset(&set, sig);
    }
    return set;
}

void block_handled_signals() {
    const sigset_t set = handled_signals();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void unblock_handled_signals() {
    const sigset_t set = handled_signals();
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace preforkctl::sys
