#pragma once
// The sd_notify datagram protocol, both ways: preforkctl as systemd's service (send) and as its workers'
// notification socket (receive).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::sys {

/// A socket file that is removed when this goes; empty (moved from, or an abstract socket): nothing to remove.
class SocketFile {
public:
    SocketFile() = default;
    explicit SocketFile(std::string path) : path_(std::move(path)) {}
    SocketFile(const SocketFile&) = delete;
    SocketFile& operator=(const SocketFile&) = delete;
    SocketFile(SocketFile&& other) noexcept : path_(std::exchange(other.path_, {})) {}
    SocketFile& operator=(SocketFile&& other) noexcept;
    ~SocketFile();

    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// A bound notification socket, the NOTIFY_SOCKET value that reaches it ("/dir/N", or "@name" in the abstract
/// namespace) and its file.
struct NotifySocket {
    Fd fd;
    std::string address;
    SocketFile file;
    std::string fallback;  // why the socket is abstract although a directory was asked for; "" otherwise
};

/// The directory of the workers' notification sockets (plan::notify_directory), made when the first one is
/// bound and removed when this goes (once empty). Binding there, not in the abstract namespace as before,
/// is what systemd does, and what clients that take NOTIFY_SOCKET for a path (Ruby's sd_notify gem, which
/// puma uses) need.
class NotifyDirectory {
public:
    /// A socket file already in an existing directory that nobody is bound to was left by a dead process
    /// with this pid, and is removed; a live one (handed over by an upgrade, or another preforkctl with this
    /// pid in another PID namespace) stays.
    NotifyDirectory() = default;
    NotifyDirectory(const NotifyDirectory&) = delete;
    NotifyDirectory& operator=(const NotifyDirectory&) = delete;
    ~NotifyDirectory();

    /// Binds a non-blocking datagram socket with SO_PASSCRED (every datagram arrives with its sender's pid and
    /// uid, as the kernel vouches for them) as a file in `directory`, mode 0666 so that a worker running as
    /// another user can send. The directory is created 0711 (others can enter it, not list it); one that
    /// exists must be a directory of this uid that nobody else can write to. When `directory` is "" or cannot
    /// be used (a read-only /run or /tmp), the socket goes in the abstract namespace, and `fallback` says why.
    Result<NotifySocket> bind(const std::string& directory);

    /// Takes over the directory of a socket file handed over by an upgrade, to remove it at the end.
    void adopt(const std::string& socket_file);

private:
    Status prepare(const std::string& directory);
    /// Binds `fd` in `directory`, made or checked first unless it is the one prepared: its path, or why not.
    Result<std::string> bind_in(int fd, const std::string& directory);

    std::string prepared_;  // the directory made or checked, "" before the first bind
    std::string refused_;   // a directory that could not be used: reported once, not tried again
    unsigned next_name_ = 0;
};

/// The file a bound unix socket's address names ("" for an abstract or unbound socket): how the image an
/// upgrade execs finds the files of the notification sockets it took over.
std::string socket_file_of(int fd);

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
