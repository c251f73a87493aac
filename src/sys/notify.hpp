#pragma once
// The sd_notify datagram protocol, both ways: preforkctl as systemd's service (send) and as its workers'
// notification socket (receive).

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

/// Binds a non-blocking datagram socket in the abstract namespace under a name unique to this process.
Result<NotifySocket> bind_notify_socket();

/// Sends `message` ("READY=1\nSTATUS=...") to NOTIFY_SOCKET `address` ("/path" or "@abstract").
/// Returns false when it could not be sent; callers log that once.
bool send_notify(const std::string& address, std::string_view message);

/// Reads every waiting datagram of a notification socket; each one is a message of NAME=VALUE lines.
std::vector<std::string> receive_notify_messages(int fd);

/// True when message `message` has the line `assignment` (e.g. "READY=1").
bool notify_message_has(std::string_view message, std::string_view assignment);

}  // namespace preforkctl::sys
