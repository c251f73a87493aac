#pragma once
// Which notifications may speak for a worker (§12: only its own process tree). A worker's NOTIFY_SOCKET
// is an abstract address: any process in the network namespace can send to it.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "sys/notify.hpp"

namespace preforkctl::supervise {

/// True when a notification from `sender` may speak for worker `worker`, which runs as `worker_uid`: it
/// comes from the worker or from a process below it. A sender that had already exited when its message
/// was read (a shell's `systemd-notify --no-block`, reaped by the shell at once) cannot be placed; it counts
/// when it ran as the worker's user. Anyone else, and any sender the kernel did not name, does not (pure).
bool speaks_for_worker(pid_t worker, uid_t worker_uid, const sys::NotifySender& sender);

/// Rejected notifications, logged without a flood: the first at once, then at most one line per interval,
/// which counts those not logged in between (pure: time is a parameter).
class RejectionLog {
public:
    explicit RejectionLog(std::chrono::steady_clock::duration interval) : interval_(interval) {}
    /// Notes one rejection at `now`; returns how many rejections the line to log now stands for (this one
    /// and those kept quiet before it), or 0 when no line is due.
    int note(std::chrono::steady_clock::time_point now);

private:
    std::chrono::steady_clock::duration interval_;
    std::chrono::steady_clock::time_point last_{};
    bool logged_ = false;
    int quiet_ = 0;
};

/// The messages of the datagrams waiting on notification socket `fd` that may speak for worker `worker` of
/// slot `slot`; the others are dropped with a warning (rate-limited).
std::vector<std::string> worker_notifications(int fd, int slot, pid_t worker, uid_t worker_uid);

}  // namespace preforkctl::supervise
