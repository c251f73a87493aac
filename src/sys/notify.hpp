#pragma once
// The sd_notify datagram protocol, both ways: preforkctl as systemd's service (send) and as its workers'
// notification socket (receive).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::sys {

/// A bound notification socket and the NOTIFY_SOCKET value that reaches it ("@name": abstract namespace).
struct NotifySocket {
    Fd fd;
    std::string address;
};

/// Binds a non-blocking datagram socket in the abstract namespace under a name unique to this process, with
/// SO_PASSCRED: every datagram arrives with its sender's pid and uid, as the kernel vouches for them.
Result<NotifySocket> bind_notify_socket();

/// Sends `message` ("READY=1\nSTATUS=...") to NOTIFY_SOCKET `address` ("/path" or "@abstract").
/// Returns false when it could not be sent; callers log that once.
bool send_notify(const std::string& address, std::string_view message);

/// Sends `message` with the descriptors `fds` attached (SCM_RIGHTS, at most 64), as FDSTORE=1 wants them.
bool send_notify_with_fds(const std::string& address, std::string_view message, const std::vector<int>& fds);

/// Who sent a notification: the kernel's credentials and, read from /proc when it arrived, the sender's ancestry.
struct NotifySender {
    pid_t pid = 0;                     // 0: unknown (no credentials, or a PID namespace that hides the sender)
    uid_t uid = static_cast<uid_t>(-1);
    /// The sender's parent, grandparent, ... up to pid 1 or this process (at most 64); nullopt when the sender
    /// had already exited (or /proc is not there).
    std::optional<std::vector<pid_t>> ancestors;
};

/// One datagram: NAME=VALUE lines, and who sent it.
struct NotifyMessage {
    std::string text;
    NotifySender sender;
};

/// Reads every waiting datagram of a notification socket. Each sender is looked up before the next datagram
/// is read: systemd-notify waits until its BARRIER=1 datagram is read, so it is still alive when its
/// READY=1 is checked. Descriptors that come with a datagram (a barrier's pipe) are closed at once.
std::vector<NotifyMessage> receive_notify_messages(int fd);

/// True when message `message` has the line `assignment` (e.g. "READY=1").
bool notify_message_has(std::string_view message, std::string_view assignment);

/// The value of line NAME=DIGITS of `message` (WATCHDOG_USEC=, EXTEND_TIMEOUT_USEC=); nullopt when the line is
/// absent or not a number.
std::optional<std::uint64_t> notify_number(std::string_view message, std::string_view name);

}  // namespace preforkctl::sys
