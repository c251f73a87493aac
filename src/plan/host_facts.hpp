#pragma once
// HostFacts: what the machine says, gathered once before planning (sys::gather_host_facts).

#include <cstddef>
#include <cstdint>
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

/// A passwd entry.
struct PasswdEntry {
    std::string name;
    unsigned uid = 0;
    unsigned gid = 0;                // primary group
    std::vector<unsigned> groups;    // getgrouplist(name, gid): the primary group and every membership
};

/// What the user and group databases say about --user USER[:GROUP] (make_plan decides from it): USER is
/// looked up by uid when it is a number (see parse_id), else by name; GROUP likewise.
struct UserLookup {
    std::optional<PasswdEntry> user;  // USER's entry, none in a distroless image or for an unlisted uid
    std::optional<unsigned> group;    // gid of GROUP's entry
};

/// RLIMIT_NOFILE as preforkctl was started with it, and the soft limit it then raised itself to.
struct FdLimits {
    std::uint64_t soft = 0;
    std::uint64_t hard = 0;
    std::uint64_t raised = 0;  // preforkctl's soft limit now: the hard one, unless raising failed
};

/// Where preforkctl looked for libpreforkctl-preload.so (--preload), and what it found.
struct PreloadLookup {
    std::string library;                // the first candidate that exists, "" when none does
    std::vector<std::string> searched;  // every candidate, in order
};

/// What the command's file says about LD_PRELOAD: the loader ignores it for static and set-id programs.
struct ExecutableFacts {
    bool static_elf = false;  // an ELF program without an interpreter (Go, musl -static, ...)
    bool set_id = false;      // setuid or setgid bit
};

/// One --env-file as read from disk (its KEY=VALUE lines are parsed by make_plan).
struct EnvFileText {
    std::string text;
    int error = 0;  // errno of reading it (ENOENT, EACCES, EISDIR, EFBIG above kMaxEnvFileBytes), 0 when read
};

/// The largest env file preforkctl reads: far above any environment execve takes, and a guard against
/// --env-file /dev/zero.
constexpr std::size_t kMaxEnvFileBytes = 1024 * 1024;

struct HostFacts {
    CpuFacts cpus;
    CommandLookup command;
    std::vector<InheritedSocket> inherited;  // adopted from systemd; empty when not socket-activated
    std::string inherited_error;             // LISTEN_FDS was meant for us but is malformed
    bool handed_over = false;                // an upgrade: `inherited` are the sockets the previous image held
    std::optional<UserLookup> user;          // present when --user was given
    unsigned euid = 0;                       // preforkctl's effective uid and gid
    unsigned egid = 0;
    bool can_switch_user = true;             // CAP_SETUID and CAP_SETGID are effective (root, usually)
    int chdir_error = 0;                     // errno of --chdir (stat from the starting directory; ENOTDIR)
    std::vector<EnvFileText> env_files;      // one per --env-file, in order (read from the starting directory)
    FdLimits fd_limits;
    int tcp_migrate_req = -1;                // net.ipv4.tcp_migrate_req, -1 when unknown
    std::optional<PreloadLookup> preload;    // present when --preload was given
    ExecutableFacts executable;              // looked at only with --preload
    std::vector<std::string> environment;  // preforkctl's own environment, "K=V"
    int pid = 0;                           // preforkctl's pid
    std::string working_directory;         // where preforkctl was started: relative paths are taken from there
};

}  // namespace preforkctl::plan
