#pragma once
// Gathers HostFacts once, before planning: CPUs, the command's PATH lookup, environment.

#include <optional>
#include <string>
#include <vector>

#include "plan/host_facts.hpp"

namespace preforkctl::sys {

/// Looks `command` up as execvp would (PATH search unless it contains '/'), returning an absolute path
/// or the errno of the failure (ENOENT, EACCES, ...).
plan::CommandLookup find_command(const std::string& command);

/// Sockets handed to this process by systemd socket activation (LISTEN_PID = our pid), with their names;
/// removes LISTEN_* from the environment. Sets `error` when LISTEN_FDS is ours but unusable.
std::vector<plan::InheritedSocket> adopt_inherited_sockets(std::string& error);

/// Looks up "USER[:GROUP]" (names or numbers) with its supplementary groups.
plan::UserLookup look_up_user(const std::string& spec);

/// Everything make_plan needs to know about this machine and process. `user` is --user, if given.
plan::HostFacts gather_host_facts(const std::string& command, const std::optional<std::string>& user);

}  // namespace preforkctl::sys
