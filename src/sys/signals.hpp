#pragma once
// Signal-mask helpers for the spawn path and start-up.

#include <csignal>

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

/// Blocks the signals preforkctl handles in its event loop, so that one arriving during start-up stays
/// pending until the loop's handlers are installed (then unblock_handled_signals delivers it).
void block_handled_signals();
void unblock_handled_signals();

/// The signals the supervisor handles.
sigset_t handled_signals();

}  // namespace preforkctl::sys
