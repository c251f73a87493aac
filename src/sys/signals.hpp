#pragma once
// Signal-mask helpers for the spawn path and start-up, and the signalfd the event loop reads signals from.

#include <csignal>
#include <vector>

#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::sys {

/// Blocks every signal for its lifetime and restores the previous mask after (thread mask).
class BlockAllSignals {
public:
    BlockAllSignals();
    ~BlockAllSignals();
    BlockAllSignals(const BlockAllSignals&) = delete;
    BlockAllSignals& operator=(const BlockAllSignals&) = delete;

private:
    sigset_t previous_{};
};

/// The signals the supervisor handles: CHLD, TERM, INT, HUP, TTIN, TTOU, TSTP, CONT, and the ones it forwards
/// (plan::kForwardedSignals).
sigset_t handled_signals();

/// Blocks the handled signals for good: they are read from a signalfd, so one that arrives during start-up
/// stays pending until the loop reads it, and a blocked TTIN/TTOU never stops preforkctl (a background
/// write to a terminal with TOSTOP is let through instead of raising SIGTTOU).
void block_handled_signals();

/// One signal read from the signalfd.
struct SignalInfo {
    int signal = 0;
    int code = 0;        // si_code: SI_USER for kill(), SI_KERNEL for the terminal driver, ...
    int sender_pid = 0;
};

/// A non-blocking signalfd for the handled signals (which must be blocked).
Result<Fd> open_signal_fd();

/// Reads every pending signal from the signalfd.
std::vector<SignalInfo> read_signals(int fd);

}  // namespace preforkctl::sys
