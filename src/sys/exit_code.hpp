#pragma once
// The exit status table of preforkctl (man page: EXIT STATUS). Lives at the bottom layer so that any
// module can say which kind of failure an Error is.

namespace preforkctl {

enum class ExitCode : int {
    clean = 0,             // stopped by a signal, or every worker ended cleanly
    internal = 1,          // an unexpected system failure in preforkctl itself
    usage = 2,             // bad command line: unknown option, bad value of an option
    config = 3,            // bad config file: syntax, unknown key, wrong type, bad value
    socket = 4,            // a listener could not be bound or listened on
    threshold = 5,         // a slot restarted too often and --on-threshold is exit
    not_executable = 126,  // the command exists but cannot be executed
    not_found = 127,       // the command was not found
};

inline int to_int(ExitCode code) { return static_cast<int>(code); }

}  // namespace preforkctl
