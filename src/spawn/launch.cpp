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
#include <atomic>
#include <climits>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "spawn/child_fds.hpp"
#include "sys/fd.hpp"
#include "sys/signals.hpp"

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

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
    const int* sources;        // become fds 0, 1, 2, 3...: stdin, stdout, stderr, the listeners
    int count;                 // how many
    int unshare_below;         // > 0: the child shares the parent's table and keeps only the fds below this
    ChildReport* report;       // a child that shares the parent's memory reports here...
    int report_fd;             // ...any other on this pipe
    pid_t parent;
};

[[noreturn]] void fail(const ChildArgs& child, int report_fd, LaunchStage stage) {
    if (child.report != nullptr) {
        // The parent sleeps until this child has exited or called execve, so it reads this afterwards.
        *child.report = ChildReport{static_cast<int>(stage), errno};
        ::_exit(127);
    }
    fail_in_child(report_fd, stage);
}

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

    if (::setsid() < 0) fail(child, report_fd, LaunchStage::session);
    // The caller's working directory, entered before the identity changes, like a process that inherits it.
    if (request.workdir_fd >= 0 && ::fchdir(request.workdir_fd) < 0) fail(child, report_fd, LaunchStage::chdir);
    if (child.cpus != nullptr && ::sched_setaffinity(0, sizeof(cpu_set_t), child.cpus) < 0) {
        fail(child, report_fd, LaunchStage::affinity);
    }
    // Until here the descriptor table may be the parent's: nothing above changed it. A table of its own now,
    // copied only below the staged descriptors (the kernel skips the rest), so that no pipe end of another
    // slot is copied here and then closed again at execve, each of them once per worker.
    if (child.unshare_below > 0 &&
        ::syscall(SYS_close_range, static_cast<unsigned>(child.unshare_below), ~0U, CLOSE_RANGE_UNSHARE) < 0) {
        fail(child, report_fd, LaunchStage::fds);
    }

    // Move every source above the targets first, so that no dup2 clobbers a source, and so that a source
    // already at its target still loses FD_CLOEXEC (dup2(3, 3) would keep it).
    constexpr int kMaxFds = 3 + 64;
    int sources[kMaxFds];
    const int count = child.count;
    std::copy(child.sources, child.sources + count, sources);
    const int floor = count;
    if (report_fd >= 0) report_fd = lift_report_fd(report_fd, floor);
    for (int i = 0; i < count; ++i) {
        if (sources[i] < count) {
            sources[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, floor);
            if (sources[i] < 0) fail(child, report_fd, LaunchStage::fds);
        }
    }
    for (int target = 0; target < count; ++target) {
        if (::dup2(sources[target], target) < 0) fail(child, report_fd, LaunchStage::fds);
    }
    // Everything else must not reach the server: mark it close-on-exec (the report pipe closes at exec too).
    close_on_exec_from(count);
    // Groups first: once the uid is dropped, the process may no longer change them.
    if (request.identity) {
        // Raw system calls: the C library's wrappers would apply the change to every thread of a
        // multi-threaded caller, and this child shares the caller's memory (see start_child).
        if (::syscall(SYS_setgroups, child.groups->size(), child.groups->data()) < 0 ||
            ::syscall(SYS_setgid, request.identity->gid) < 0 || ::syscall(SYS_setuid, request.identity->uid) < 0) {
            fail(child, report_fd, LaunchStage::identity);
        }
    }
    // After the identity change: the kernel clears the parent-death signal when the credentials change.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail(child, report_fd, LaunchStage::deathsig);
    // The parent may have died before PDEATHSIG was armed; then nobody would ever kill us. No report: there
    // is nobody left to read it.
    if (::getppid() != child.parent) ::_exit(127);
    if (request.chdir && ::chdir(request.chdir->c_str()) < 0) fail(child, report_fd, LaunchStage::chdir);
    // The limit preforkctl was started with: a select()-based server breaks with the raised one.
    if (child.fd_limit != nullptr && ::setrlimit(RLIMIT_NOFILE, child.fd_limit) < 0) {
        fail(child, report_fd, LaunchStage::fd_limit);
    }
    if (child.listen_pid_value != nullptr) {
        write_decimal(child.listen_pid_value, static_cast<long>(::getpid()));
    }
    ::execve(request.executable.c_str(), child.argv, child.envp);
    fail(child, report_fd, LaunchStage::exec);
}

int child_entry(void* arg) { run_child(*static_cast<const ChildArgs*>(arg)); }

#if defined(__SANITIZE_ADDRESS__)
// The sanitizer's run-time intercepts calls the child makes (sigaction among them) and keeps state in
// memory that a CLONE_VM child would share with the supervisor; a plain fork keeps that state apart, and
// the child reports on the pipe.
constexpr bool kSharesMemory = false;
pid_t start_child(ChildArgs& child, void* /*stack_top*/) {
    child.report = nullptr;
    child.unshare_below = 0;
    const pid_t pid = ::fork();
    if (pid == 0) child_entry(&child);
    return pid;
}
#else
// Starts the child the way posix_spawn does: it shares the supervisor's memory (no page tables to copy, no
// copy-on-write faults, nothing for execve to tear down) on a stack of its own, and the supervisor sleeps
// until the child has called execve or _exit. This halves the time from a worker's death to its
// replacement's exec (tests/bench/restart_latency.sh). The child writes only its own stack, errno, the
// LISTEN_PID digits in `envp`, which the supervisor discards after the launch, and its report on failure.
// With `unshare_below` it shares the descriptor table too, until it takes a small copy of its own.
constexpr bool kSharesMemory = true;
pid_t start_child(ChildArgs& child, void* stack_top) {
    const int files = child.unshare_below > 0 ? CLONE_FILES : 0;
    return ::clone(child_entry, stack_top, CLONE_VM | CLONE_VFORK | files | SIGCHLD, &child);
}
#endif

// The child's stack. It grows down towards an inaccessible guard page, so that an overflow faults in the
// child instead of writing over whatever memory of the supervisor lies below it.
class ChildStack {
public:
    ChildStack() = default;
    ChildStack(const ChildStack&) = delete;
    ChildStack& operator=(const ChildStack&) = delete;
    ~ChildStack() {
        if (base_ != nullptr) ::munmap(base_, mapped_);
    }

    /// The top of the stack, mapped on first use; nullptr (errno set) when it cannot be.
    void* top() {
        if (base_ == nullptr && !map()) return nullptr;
        return static_cast<char*>(base_) + mapped_;
    }

private:
    bool map() {
        constexpr std::size_t kStackSize = 256 * 1024;
        const auto guard = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        const std::size_t mapped = guard + kStackSize;
        void* base = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (base == MAP_FAILED) return false;
        if (::mprotect(base, guard, PROT_NONE) < 0) {
            const int protect_error = errno;
            ::munmap(base, mapped);
            errno = protect_error;
            return false;
        }
        base_ = base;
        mapped_ = mapped;
        return true;
    }

    void* base_ = nullptr;
    std::size_t mapped_ = 0;
};

// Whether this kernel can give a child a partial copy of a shared table (close_range with
// CLOSE_RANGE_UNSHARE, Linux 5.9). Asked of an empty range, so it closes nothing; through the C library's
// syscall(), so that the tests' shim refuses it as an old kernel or a seccomp filter would.
bool can_unshare_partly() {
    return ::syscall(SYS_close_range, static_cast<unsigned>(INT_MAX), static_cast<unsigned>(INT_MAX),
                     CLOSE_RANGE_UNSHARE) == 0;
}

}  // namespace

struct Launcher::Shared {
    sys::Fd devnull;
    std::vector<sys::Fd> staged;  // [0] stdout, [1] stderr, then the listeners; /dev/null between launches
    int unshare_below = 0;        // 0: no staging (the child copies the whole table)
    ChildStack stack;
    pid_t self = ::getpid();
};

Launcher::Launcher(std::size_t listen_fds) : shared_(std::make_unique<Shared>()) {
    shared_->devnull = sys::Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!shared_->devnull.valid() || !kSharesMemory || !can_unshare_partly()) return;
    int highest = shared_->devnull.get();
    for (std::size_t i = 0; i < 2 + std::min<std::size_t>(listen_fds, 64); ++i) {
        sys::Fd slot(::fcntl(shared_->devnull.get(), F_DUPFD_CLOEXEC, 0));
        if (!slot.valid()) {
            shared_->staged.clear();
            return;
        }
        highest = std::max(highest, slot.get());
        shared_->staged.push_back(std::move(slot));
    }
    shared_->unshare_below = highest + 1;
}

Launcher::~Launcher() = default;

namespace {

// Starts one worker: `devnull` is its stdin; `staged` (with `unshare_below`), when not empty, the low
// descriptors its others are duplicated into first; `stack` the child's stack.
LaunchResult launch_with(const LaunchRequest& request, int devnull, const std::vector<sys::Fd>& staged,
                         int unshare_below, ChildStack& stack, pid_t self) {
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
    std::array<int, 3 + 64> sources{};
    const int count = 3 + static_cast<int>(request.listen_fds.size());
    sources[0] = devnull;
    sources[1] = request.stdout_fd;
    sources[2] = request.stderr_fd;
    std::copy(request.listen_fds.begin(), request.listen_fds.end(), sources.begin() + 3);
    const bool staging = !staged.empty() && request.listen_fds.size() + 2 <= staged.size();
    // Between launches the staged descriptors hold /dev/null again: a retired pipe must reach its end of file
    // once its last worker is gone, and a closed listener must really close.
    struct Unstage {
        const std::vector<sys::Fd>& staged;
        int devnull;
        bool active;
        ~Unstage() {
            if (!active) return;
            for (const sys::Fd& fd : staged) ::dup3(devnull, fd.get(), O_CLOEXEC);
        }
    } unstage{staged, devnull, staging};

    if (staging) {
        for (int i = 1; i < count; ++i) {
            const int to = staged[static_cast<std::size_t>(i - 1)].get();
            if (::dup3(sources[static_cast<std::size_t>(i)], to, O_CLOEXEC) < 0) {
                // Both descriptors are open, so EBADF means the target lies at or above a lowered
                // RLIMIT_NOFILE: the process is out of descriptors, which is what EMFILE tells the user.
                return {-1, LaunchError{LaunchStage::fds, errno == EBADF ? EMFILE : errno}};
            }
            sources[static_cast<std::size_t>(i)] = to;
        }
    }

    std::optional<sys::Pipe> report_pipe;
    if (!kSharesMemory) {
        auto made = sys::make_pipe();
        if (!made) return {-1, LaunchError{LaunchStage::fork, made.error().code}};
        report_pipe = std::move(*made);
    }
    void* stack_top = stack.top();
    if (kSharesMemory && stack_top == nullptr) return {-1, LaunchError{LaunchStage::fork, errno}};
    constexpr int kNoStage = -1;
    ChildReport shared_report{kNoStage, 0};
    ChildArgs child{&request,
                    argv.data(),
                    envp.data(),
                    listen_pid_value,
                    request.cpus.empty() ? nullptr : &cpus,
                    request.fd_limit ? &fd_limit : nullptr,
                    &groups,
                    sources.data(),
                    count,
                    staging ? unshare_below : 0,
                    &shared_report,
                    report_pipe ? report_pipe->write_end.get() : -1,
                    self};
    pid_t pid = -1;
    {
        // With signals blocked, no handler of ours runs in the child before it resets them.
        sys::BlockAllSignals blocked;
        pid = start_child(child, stack_top);
    }
    if (pid < 0) {
        return {-1, LaunchError{LaunchStage::fork, errno}};
    }
    ChildReport child_report{};
    if (kSharesMemory) {
        // The child has called execve or exited by now; what it wrote is seen only after this fence.
        std::atomic_signal_fence(std::memory_order_seq_cst);
        const volatile ChildReport& written = shared_report;
        child_report = ChildReport{written.stage, written.error};
        if (child_report.stage == kNoStage) return {pid, std::nullopt};
    } else {
        report_pipe->write_end.reset();
        ssize_t got = 0;
        do {
            got = ::read(report_pipe->read_end.get(), &child_report, sizeof child_report);
        } while (got < 0 && errno == EINTR);
        if (got == 0) {
            return {pid, std::nullopt};  // EOF: the pipe closed at a successful exec
        }
        if (got != static_cast<ssize_t>(sizeof child_report)) child_report = {static_cast<int>(LaunchStage::exec), EIO};
    }
    // The child failed before exec and has exited; reap it here so that it never shows as a worker.
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return {-1, LaunchError{static_cast<LaunchStage>(child_report.stage), child_report.error}};
}

}  // namespace

LaunchResult Launcher::launch(const LaunchRequest& request) {
    if (!shared_->devnull.valid()) {
        // It could not be opened at construction (descriptors ran out?): try again for this start.
        shared_->devnull = sys::Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!shared_->devnull.valid()) return {-1, LaunchError{LaunchStage::devnull, errno}};
    }
    return launch_with(request, shared_->devnull.get(), shared_->staged, shared_->unshare_below, shared_->stack,
                       shared_->self);
}

}  // namespace preforkctl::spawn
