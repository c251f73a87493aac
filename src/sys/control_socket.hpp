#pragma once
// The unix socket of the control plane: creating it safely, connecting to it, and who is on the other end.

#include <sys/types.h>

#include <optional>
#include <string>

#include "sys/fd.hpp"
#include "sys/result.hpp"

namespace preforkctl::sys {

/// A listening control socket and the file it is bound to.
struct ControlSocket {
    Fd fd;       // non-blocking, close-on-exec
    dev_t device = 0;
    ino_t inode = 0;
};

/// Listens on `path`, mode 0600, in a directory that is created 0700 if missing (an existing one must
/// belong to this uid or root and be writable by nobody else). A socket file nobody listens on (left by a
/// preforkctl that died) is replaced; one that answers is an error naming the live preforkctl's pid, exit
/// status 4 — it is never taken over.
Result<ControlSocket> listen_control_socket(const std::string& path);

/// Removes the socket file at `path` if it is still the one `socket` was bound to (not a successor's).
void remove_control_socket(const std::string& path, const ControlSocket& socket);

/// Connects to the control socket at `path` (blocking, close-on-exec).
Result<Fd> connect_control_socket(const std::string& path);

/// The process on the other end of a connected unix socket.
struct PeerCredentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

/// SO_PEERCRED of `fd`.
std::optional<PeerCredentials> peer_credentials(int fd);

}  // namespace preforkctl::sys
