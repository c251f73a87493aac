#include "spawn/launch.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "spawn/child_fds.hpp"
#include "sys/fd.hpp"
#include "sys/signals.hpp"

namespace preforkctl::spawn {

const char* to_text(LaunchStage stage) {
    switch (stage) {
        case LaunchStage::fork: return "fork";
        case LaunchStage::devnull: return "open /dev/null";
        case LaunchStage::session: return "setsid";
        case LaunchStage::deathsig: return "prctl(PR_SET_PDEATHSIG)";
        case LaunchStage::affinity: return "sched_setaffinity";
        case LaunchStage::fds: return "dup2";
        case LaunchStage::identity: return "setgroups/setgid/setuid";
        case LaunchStage::chdir: return "chdir";
        case LaunchStage::exec: return "execve";
        case LaunchStage::fd_limit: return "setrlimit(RLIMIT_NOFILE)";
    }
    return "?";
}

bool is_permanent(const LaunchError& failure) {
    switch (failure.stage) {
        case LaunchStage::exec:
            switch (failure.error) {
                case EAGAIN:
                case ENOMEM:
                case EMFILE:
                case ENFILE:
                case ETXTBSY:
                case EINTR: return false;
                default: return true;
            }
        case LaunchStage::chdir:
            switch (failure.error) {
                case ENOENT:
                case ENOTDIR:
                case EACCES:
                case ELOOP:
                case ENAMETOOLONG: return true;
                default: return false;
            }
        case LaunchStage::identity: return failure.error == EPERM || failure.error == EINVAL;
        case LaunchStage::affinity: return failure.error == EINVAL;
        case LaunchStage::fork:
        case LaunchStage::devnull:
        case LaunchStage::session:
        case LaunchStage::deathsig:
        case LaunchStage::fds:
        case LaunchStage::fd_limit: return false;
    }
    return false;
}

std::string describe_failure(const LaunchError& failure, const std::string& command) {
    if (failure.stage == LaunchStage::exec) {
        return "cannot execute " + command + ": " + std::strerror(failure.error);
    }
    return "cannot start " + command + ": " + to_text(failure.stage) + ": " + std::strerror(failure.error);
}

namespace {

// Writes `value` in decimal into the space reserved after "LISTEN_PID=".
void write_decimal(char* out, long value) {
    char digits[24];
    int count = 0;
    do {
        digits[count++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value > 0);
    while (count > 0) {
        *out++ = digits[--count];
    }
    *out = '\0';
}

// Everything the child needs, prepared by the parent: after the clone it may not allocate.
struct ChildArgs {
    const LaunchRequest* request;
    char* const* argv;
    char* const* envp;
    char* listen_pid_value;
    const cpu_set_t* cpus;
    const rlimit* fd_limit;
    const std::vector<gid_t>* groups;
    int devnull;
    int report_fd;
    pid_t parent;
};

[[noreturn]] void run_child(const ChildArgs& child) {
    const LaunchRequest& request = *child.request;
    int report_fd = child.report_fd;
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
        ::sigaction(sig, &default_action, nullptr);  // fails harmlessly for KILL/STOP and reserved numbers
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    if (::setsid() < 0) fail_in_child(report_fd, LaunchStage::session);
    // The caller's working directory, entered before the identity changes, like a process that inherits it.
    if (request.workdir_fd >= 0 && ::fchdir(request.workdir_fd) < 0) fail_in_child(report_fd, LaunchStage::chdir);
    if (child.cpus != nullptr && ::sched_setaffinity(0, sizeof(cpu_set_t), child.cpus) < 0) {
        fail_in_child(report_fd, LaunchStage::affinity);
    }

    // Move every source above the targets first, so that no dup2 clobbers a source, and so that a source
    // already at its target still loses FD_CLOEXEC (dup2(3, 3) would keep it).
    constexpr int kMaxFds = 3 + 64;
    int sources[kMaxFds];
    const int count = 3 + static_cast<int>(request.listen_fds.size());
    sources[0] = child.devnull;
    sources[1] = request.stdout_fd;
    sources[2] = request.stderr_fd;
    for (std::size_t i = 0; i < request.listen_fds.size(); ++i) {
        sources[3 + i] = request.listen_fds[i];
    }
    const int floor = count;
    report_fd = lift_report_fd(report_fd, floor);
    for (int i = 0; i < count; ++i) {
        if (sources[i] < count) {
            sources[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, floor);
            if (sources[i] < 0) fail_in_child(report_fd, LaunchStage::fds);
        }
    }
    for (int target = 0; target < count; ++target) {
        if (::dup2(sources[target], target) < 0) fail_in_child(report_fd, LaunchStage::fds);
    }
    // Everything else must not reach the server: mark it close-on-exec (the report pipe closes at exec too).
    close_on_exec_from(count);
    // Groups first: once the uid is dropped, the process may no longer change them.
    if (request.identity) {
        // Raw system calls: the C library's wrappers would apply the change to every thread of a
        // multi-threaded caller, and this child shares the caller's memory (see start_child).
        if (::syscall(SYS_setgroups, child.groups->size(), child.groups->data()) < 0 ||
            ::syscall(SYS_setgid, request.identity->gid) < 0 || ::syscall(SYS_setuid, request.identity->uid) < 0) {
            fail_in_child(report_fd, LaunchStage::identity);
        }
    }
    // After the identity change: the kernel clears the parent-death signal when the credentials change.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail_in_child(report_fd, LaunchStage::deathsig);
    // The parent may have died before PDEATHSIG was armed; then nobody would ever kill us. No report: there
    // is nobody left to read it.
    if (::getppid() != child.parent) ::_exit(127);
    if (request.chdir && ::chdir(request.chdir->c_str()) < 0) fail_in_child(report_fd, LaunchStage::chdir);
    // The limit preforkctl was started with: a select()-based server breaks with the raised one.
    if (child.fd_limit != nullptr && ::setrlimit(RLIMIT_NOFILE, child.fd_limit) < 0) {
        fail_in_child(report_fd, LaunchStage::fd_limit);
    }
    if (child.listen_pid_value != nullptr) {
        write_decimal(child.listen_pid_value, static_cast<long>(::getpid()));
    }
    ::execve(request.executable.c_str(), child.argv, child.envp);
    fail_in_child(report_fd, LaunchStage::exec);
}


int child_entry(void* arg) { run_child(*static_cast<const ChildArgs*>(arg)); }

#if defined(__SANITIZE_ADDRESS__)
// The sanitizer's run-time intercepts calls the child makes (sigaction among them) and keeps state in
// memory that a CLONE_VM child would share with the supervisor; a plain fork keeps that state apart.
pid_t start_child(const ChildArgs& child) {
    const pid_t pid = ::fork();
    if (pid == 0) child_entry(const_cast<ChildArgs*>(&child));
    return pid;
}
#else
// Starts the child the way posix_spawn does: it shares the supervisor's memory (no page tables to copy, no
// copy-on-write faults, nothing for execve to tear down) on a stack of its own, and the supervisor sleeps
// until the child has called execve or _exit. This halves the time from a worker's death to its
// replacement's exec (tests/bench/restart_latency.sh). The child writes only its own stack, errno and the
// LISTEN_PID digits in `envp`, which the supervisor discards after the launch.
//
// The stack grows down towards an inaccessible guard page, so that an overflow faults in the child instead
// of writing over whatever memory of the supervisor lies below it.
pid_t start_child(const ChildArgs& child) {
    constexpr std::size_t kStackSize = 256 * 1024;
    const auto guard = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t mapped = guard + kStackSize;
    void* base = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return -1;
    if (::mprotect(base, guard, PROT_NONE) < 0) {
        const int protect_error = errno;
        ::munmap(base, mapped);
        errno = protect_error;
        return -1;
    }
    const pid_t pid = ::clone(child_entry, static_cast<char*>(base) + mapped, CLONE_VM | CLONE_VFORK | SIGCHLD,
                              const_cast<ChildArgs*>(&child));
    const int clone_error = errno;
    ::munmap(base, mapped);
    errno = clone_error;
    return pid;
}
#endif

}  // namespace

LaunchResult launch(const LaunchRequest& request) {
    if (request.listen_fds.size() > 64) {
        return {-1, LaunchError{LaunchStage::fds, EMFILE}};
    }
    // Prepare everything the child needs: after fork it may not allocate.
    std::vector<std::string> env = request.env;
    std::size_t listen_pid_index = env.size();
    if (!request.listen_fds.empty()) {
        env.emplace_back("LISTEN_PID=" + std::string(20, ' '));
    }
    std::vector<char*> argv;
    for (const std::string& arg : request.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (std::string& entry : env) envp.push_back(entry.data());
    envp.push_back(nullptr);
    char* listen_pid_value = listen_pid_index < env.size() ? env[listen_pid_index].data() + 11 : nullptr;

    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    for (const int cpu : request.cpus) {
        if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(static_cast<std::size_t>(cpu), &cpus);
    }
    rlimit fd_limit{};
    if (request.fd_limit) {
        if (::getrlimit(RLIMIT_NOFILE, &fd_limit) < 0) return {-1, LaunchError{LaunchStage::fd_limit, errno}};
        fd_limit.rlim_cur = std::min<rlim_t>(*request.fd_limit, fd_limit.rlim_max);
    }
    std::vector<gid_t> groups;
    if (request.identity) {
        groups.assign(request.identity->groups.begin(), request.identity->groups.end());
    }
    sys::Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!devnull.valid()) {
        return {-1, LaunchError{LaunchStage::devnull, errno}};
    }
    auto report = sys::make_pipe();
    if (!report) {
        return {-1, LaunchError{LaunchStage::fork, report.error().code}};
    }

    const ChildArgs child{&request,     argv.data(),          envp.data(), listen_pid_value,
                          request.cpus.empty() ? nullptr : &cpus, request.fd_limit ? &fd_limit : nullptr, &groups,
                          devnull.get(), report->write_end.get(), ::getpid()};
    pid_t pid = -1;
    {
        // With signals blocked, no handler of ours runs in the child before it resets them.
        sys::BlockAllSignals blocked;
        pid = start_child(child);
    }
    if (pid < 0) {
        return {-1, LaunchError{LaunchStage::fork, errno}};
    }
    report->write_end.reset();
    ChildReport child_report{};
    ssize_t got = 0;
    do {
        got = ::read(report->read_end.get(), &child_report, sizeof child_report);
    } while (got < 0 && errno == EINTR);
    if (got == 0) {
        return {pid, std::nullopt};  // EOF: the pipe closed at a successful exec
    }
    // The child failed before exec and has exited; reap it here so that it never shows as a worker.
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got != static_cast<ssize_t>(sizeof child_report)) {
        return {-1, LaunchError{LaunchStage::exec, EIO}};
    }
    return {-1, LaunchError{static_cast<LaunchStage>(child_report.stage), child_report.error}};
}

}  // namespace preforkctl::spawn
