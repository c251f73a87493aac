#pragma once
// HostFacts: what the machine says, gathered once before planning (sys::gather_host_facts).

#include <optional>
#include <string>
#include <vector>

#include "plan/cpus.hpp"

namespace preforkctl::plan {

/// Result of looking the command up (PATH search and an execute-permission check).
struct CommandLookup {
    std::string path;  // resolved executable, empty when not found
    int error = 0;     // errno of the failed lookup (ENOENT, EACCES, ...), 0 when executable
};

/// A listening socket preforkctl inherited through systemd socket activation (LISTEN_PID = its pid).
struct InheritedSocket {
    int fd = -1;
    std::string name;     // from LISTEN_FDNAMES, "unknown" when absent
    std::string address;  // as getsockname reports it, for messages
    std::string host;     // numeric host for {host}/SERVER_STARTER_PORT ("" for unix sockets)
    int port = 0;
};

/// The worker user of --user, looked up in the user database.
struct UserLookup {
    bool found = false;
    unsigned uid = 0;
    unsigned gid = 0;
    std::vector<unsigned> groups;  // supplementary groups of the user (and the primary group)
    std::string error;             // why it was not found
};

struct HostFacts {
    CpuFacts cpus;
    CommandLookup command;
    std::vector<InheritedSocket> inherited;  // adopted from systemd; empty when not socket-activated
    std::string inherited_error;             // LISTEN_FDS was meant for us but is malformed
    std::optional<UserLookup> user;          // present when --user was given
    int tcp_migrate_req = -1;                // net.ipv4.tcp_migrate_req, -1 when unknown
    std::vector<std::string> environment;  // preforkctl's own environment, "K=V"
    int pid = 0;                           // preforkctl's pid
};

}  // namespace preforkctl::plan
