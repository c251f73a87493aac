#pragma once
// Starting one worker: the parent prepares plain data, the child runs only async-signal-safe calls.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sys/result.hpp"

namespace preforkctl::spawn {

/// Who the worker runs as: set with setgroups/setgid/setuid just before exec (real, effective and saved ids).
struct Identity {
    unsigned uid = 0;
    unsigned gid = 0;
    std::vector<unsigned> groups;
};

/// Everything the child needs, decided in the parent. Fds are borrowed, not owned.
struct LaunchRequest {
    std::string executable;              // absolute path
    std::vector<std::string> argv;       // argv[0] included
    std::vector<std::string> env;        // "K=V"; LISTEN_PID is added when listen_fds is non-empty
    std::vector<int> listen_fds;         // become fds 3, 4, ... in the child
    int stdout_fd = 1;                   // becomes fd 1
    int stderr_fd = 2;                   // becomes fd 2
    std::vector<int> cpus;               // confine to these CPUs (sched_setaffinity); empty: as preforkctl
    std::optional<std::uint64_t> fd_limit;  // RLIMIT_NOFILE soft limit to restore (preforkctl raised its own)
    int workdir_fd = -1;                 // the child fchdir()s here first (preforkctl itself sits in /)
    std::optional<std::string> chdir;    // then here, relative to workdir_fd
    std::optional<Identity> identity;
};

/// Which step of the child side failed.
enum class LaunchStage { fork, devnull, session, deathsig, affinity, fds, identity, chdir, exec, fd_limit };

const char* to_text(LaunchStage stage);

/// A failure to start: stage and errno. Exec failures carry the exit code 126/127 (§6).
struct LaunchError {
    LaunchStage stage;
    int error;
};

/// What Launcher::launch (fork and exec) gives. On success the worker runs in its own process group
/// (pgid = pid) with default signal dispositions, an empty mask, PR_SET_PDEATHSIG(SIGKILL), stdin from
/// /dev/null, exactly fds 0..2 + listeners, and LISTEN_PID equal to its own pid. A failed child is reaped before returning.
/// Must be called from the thread that reaps (PDEATHSIG follows the forking thread).
struct LaunchResult {
    pid_t pid = -1;
    std::optional<LaunchError> failure;
};

/// Starts workers as above. What every start shares is set up once (stdin's /dev/null, the child's stack,
/// the parent's pid), and the child does not copy the supervisor's descriptor table. A worker's descriptors
/// are first duplicated into a few low descriptors reserved here; the child shares the table only until it
/// unshares everything below them, so that neither the clone nor the execve handles the 4 pipe ends per
/// slot the supervisor holds. Create it early, while descriptor numbers are still low, with the number of
/// listening sockets a worker gets (a request with more, or a kernel without
/// close_range(CLOSE_RANGE_UNSHARE), has the child copy the whole table).
class Launcher {
public:
    explicit Launcher(std::size_t listen_fds);
    ~Launcher();
    Launcher(const Launcher&) = delete;
    Launcher& operator=(const Launcher&) = delete;

    LaunchResult launch(const LaunchRequest& request);

private:
    struct Shared;
    std::unique_ptr<Shared> shared_;
};

/// True when a retry would fail the same way: the command cannot run (not found, not executable, bad
/// format), the directory cannot be entered (missing, not a directory, no permission, a symlink loop), the
/// identity cannot be taken (EPERM, EINVAL), the CPU set is not allowed (EINVAL). A resource shortage of one
/// start (EAGAIN from RLIMIT_NPROC, ENOMEM, EMFILE, ENFILE, ETXTBSY, EINTR) is not: the start failed, and the
/// restart policy may try again.
bool is_permanent(const LaunchError& failure);

/// "cannot execute ./x: No such file or directory" style text for a failure.
std::string describe_failure(const LaunchError& failure, const std::string& command);

}  // namespace preforkctl::spawn
