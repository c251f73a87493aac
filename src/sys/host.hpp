#pragma once
// Gathers HostFacts once, before planning: CPUs, the command's PATH lookup, environment.

#include <string>

#include "plan/host_facts.hpp"

namespace preforkctl::sys {

/// Looks `command` up as execvp would (PATH search unless it contains '/'), returning an absolute path
/// or the errno of the failure (ENOENT, EACCES, ...).
plan::CommandLookup find_command(const std::string& command);

/// Everything make_plan needs to know about this machine and process.
plan::HostFacts gather_host_facts(const std::string& command);

}  // namespace preforkctl::sys
