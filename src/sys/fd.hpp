#pragma once
// Move-only owner of a file descriptor, and the few fd helpers the project needs.

#include <utility>

#include "sys/result.hpp"

namespace preforkctl::sys {

/// Owns one file descriptor; closes it on destruction. -1 means "none".
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }
    ~Fd() { reset(); }

    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    /// Gives up ownership without closing.
    int release() { return std::exchange(fd_, -1); }
    /// Closes the current fd (if any) and owns `fd` instead.
    void reset(int fd = -1);

private:
    int fd_ = -1;
};

/// Both ends of a pipe, both O_CLOEXEC.
struct Pipe {
    Fd read_end;
    Fd write_end;
};

/// pipe2(O_CLOEXEC | extra_flags).
Result<Pipe> make_pipe(int extra_flags = 0);

/// Sets or clears O_NONBLOCK.
Status set_nonblocking(int fd, bool on);

/// Opens the working directory (O_PATH) and moves the process to "/", so that preforkctl keeps no file
/// system busy; the workers go back to the returned directory (fchdir) before they exec. If the working
/// directory cannot be opened, the process stays where it is and an invalid Fd comes back.
Fd leave_working_directory();

/// Makes sure fds 0, 1 and 2 are open (to /dev/null if not), so that no pipe or socket lands there.
void ensure_standard_fds_open();

}  // namespace preforkctl::sys
