#pragma once
// Result<T>: a value or an Error. Used by every module below app/; exceptions stop at library edges.

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include "sys/exit_code.hpp"

namespace preforkctl {

/// Why something failed: one human sentence (no "preforkctl: error:" prefix) and, when it came from the
/// kernel, the errno value.
struct Error {
    std::string message;
    int code = 0;                          // errno, when the kernel said no
    ExitCode exit = ExitCode::internal;    // the exit status this failure leads to, if it ends preforkctl
};

/// Error whose message is "WHAT: strerror(err)".
inline Error errno_error(const std::string& what, int err = errno, ExitCode exit = ExitCode::internal) {
    return Error{what + ": " + std::strerror(err), err, exit};
}

/// Either a T or an Error; a minimal std::expected stand-in (C++20 has none).
template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}        // NOLINT(google-explicit-constructor)
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}    // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    [[nodiscard]] const Error& error() const { return std::get<1>(state_); }

private:
    std::variant<T, Error> state_;
};

/// Success-or-Error for operations without a value.
struct Ok {};
using Status = Result<Ok>;

}  // namespace preforkctl
