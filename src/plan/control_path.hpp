#pragma once
// Where the control socket lives (SPEC §11): $XDG_RUNTIME_DIR/preforkctl/NAME.sock when that variable is
// set, /run/preforkctl/NAME.sock for root, /tmp/preforkctl-UID/NAME.sock otherwise. Pure; the client
// (`ctl --name`) and the server compute it the same way.

#include <string>

namespace preforkctl::plan {

/// The directory control sockets of this uid go in.
std::string control_directory(unsigned euid, const std::string& xdg_runtime_dir);

/// The socket file of the preforkctl called `name` (characters a file name cannot hold become '_').
std::string control_socket_path(const std::string& name, unsigned euid, const std::string& xdg_runtime_dir);

}  // namespace preforkctl::plan
