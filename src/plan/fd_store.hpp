#pragma once
// --fd-store (SPEC §14): which stored sockets a --listen takes back after a restart, and the sd_notify
// messages that store and forget them. Pure.

#include <string>

#include "config/settings.hpp"
#include "plan/host_facts.hpp"
#include "plan/listen_address.hpp"
#include "plan/plan.hpp"
#include "sys/result.hpp"

namespace preforkctl::plan {

/// True when the listeners go to systemd's fd store: --fd-store as given, else whether systemd says the
/// unit has one ($FDSTORE > 0, systemd 254 and later).
bool wants_fd_store(const config::Settings& settings, const HostFacts& facts);

/// True when a socket systemd passed back (LISTEN_FDNAMES name, getsockname address) is the one `wanted`
/// asks for: the same name and address; a wanted port 0 takes the port the socket has.
bool stored_socket_matches(const ListenSpec& wanted, const InheritedSocket& socket);

/// With --listen given, the fd store wanted and sockets passed by systemd: each listener takes the first
/// passed socket that matches it (Kind::inherited); a passed socket no listener takes is forgotten
/// (plan.stale_stored).
void adopt_stored_sockets(const HostFacts& facts, Plan& plan);

/// "FDSTORE=1\nFDNAME=<name>": sent with the listener's socket.
std::string fd_store_message(const ListenSpec& listener);

/// "FDSTOREREMOVE=1\nFDNAME=<name>": systemd closes every stored socket of that name.
std::string fd_store_remove_message(const std::string& name);

}  // namespace preforkctl::plan
