#pragma once
// Gathers HostFacts once, before planning: CPUs, the command's PATH lookup, users, limits, environment.

#include <optional>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "plan/host_facts.hpp"

namespace preforkctl::sys {

/// Looks `command` up as execvp would (PATH search unless it contains '/'), returning an absolute path
/// or the errno of the failure (ENOENT, EACCES, ...).
plan::CommandLookup find_command(const std::string& command);

/// Sockets handed to this process by systemd socket activation (LISTEN_PID = our pid), with their names;
/// removes LISTEN_* from the environment. Sets `error` when LISTEN_FDS is ours but unusable.
std::vector<plan::InheritedSocket> adopt_inherited_sockets(std::string& error);

/// Looks up "USER[:GROUP]" in the user and group databases: numbers by id, names by name.
plan::UserLookup look_up_user(const std::string& spec);

/// Raises this process's RLIMIT_NOFILE soft limit to the hard limit (as systemd and Go's runtime do), so
/// that many workers' pipes fit; returns the limits it was started with and the one it has now.
plan::FdLimits raise_fd_limit();

/// True when CAP_SETUID and CAP_SETGID are in this process's effective set, so that it may run workers as
/// another user (root has them unless a container dropped them).
bool can_switch_user();

/// 0 when `path` (relative: to the current directory) is a directory, else the errno (ENOTDIR for a file).
int check_directory(const std::string& path);

/// The text of `path` (relative: to the current directory), or the errno of opening or reading it; a file
/// larger than plan::kMaxEnvFileBytes is EFBIG.
plan::EnvFileText read_env_file(const std::string& path);

/// Candidates for libpreforkctl-preload.so: beside this executable (/proc/self/exe), the install tree
/// relative to it (BIN/../lib/preforkctl), then the path it was built to be installed at.
plan::PreloadLookup find_preload_library();

/// Whether the loader would ignore LD_PRELOAD for `path`: a static ELF program, or a setuid/setgid file.
plan::ExecutableFacts inspect_executable(const std::string& path);

/// Everything make_plan needs to know about this machine and process for `settings` (the command, --user,
/// --chdir, the --env-file texts); `fd_limits` is what raise_fd_limit returned.
plan::HostFacts gather_host_facts(const config::Settings& settings, const plan::FdLimits& fd_limits);

}  // namespace preforkctl::sys
