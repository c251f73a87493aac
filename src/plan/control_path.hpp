#pragma once
// Where the control socket lives (SPEC §11): $XDG_RUNTIME_DIR/preforkctl/NAME.sock when that variable is
// set, /run/preforkctl/NAME.sock for root, /tmp/preforkctl-UID/NAME.sock otherwise. Pure; the client
// (`ctl --name`) and the server compute it the same way. Beside it, where the workers' notification sockets go.

#include <string>

namespace preforkctl::plan {

/// The directory control sockets of this uid go in.
std::string control_directory(unsigned euid, const std::string& xdg_runtime_dir);

/// The socket file of the preforkctl called `name` (characters a file name cannot hold become '_').
std::string control_socket_path(const std::string& name, unsigned euid, const std::string& xdg_runtime_dir);

/// The directory of the workers' NOTIFY_SOCKET files, named after preforkctl's pid (an upgrade keeps the pid,
/// so the image it execs finds its sockets there): under /run for root, else $XDG_RUNTIME_DIR, else /tmp. A
/// worker running as another user cannot enter $XDG_RUNTIME_DIR (0700), so then /tmp.
std::string notify_directory(unsigned euid, const std::string& xdg_runtime_dir, int pid, bool workers_as_other_user);

}  // namespace preforkctl::plan
