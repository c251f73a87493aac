#pragma once
// The receiving side of `ctl upgrade` (SPEC §14): a new image of preforkctl started by the running one with
// a hidden first argument, `--upgrade-check=FD` (say whether it can take over the state in FD, change
// nothing) or `--upgrade-state=FD` (take over: same pid, the workers and sockets of the previous image).
// The rest of the command line is the one preforkctl was started with.

#include <optional>

#include "config/settings.hpp"
#include "plan/host_facts.hpp"
#include "supervise/supervisor.hpp"
#include "sys/result.hpp"

namespace preforkctl::app {

enum class HandoverMode { none, check, restore };

struct HandoverArgument {
    HandoverMode mode = HandoverMode::none;
    int fd = -1;
};

/// Takes the hidden argument off argv (argv[1]), if it is there.
HandoverArgument take_handover_argument(int& argc, char**& argv);

/// Checks (prints upgrade::kCheckAccepted, exit 0) or takes over (runs the supervisor until it ends).
int take_over(const HandoverArgument& handover, int argc, char** argv, plan::FdLimits fd_limits);

// From run.cpp, shared with the take-over.
Result<config::Settings> load_settings(int argc, char** argv, std::optional<int>& exit_now);
void set_verbosity(int verbosity);
void set_log_format(const config::Settings& settings);
supervise::Reread reread_from(int argc, char** argv, plan::FdLimits fd_limits, int workdir);
supervise::Invocation invocation_of(int argc, char** argv, plan::FdLimits fd_limits);

}  // namespace preforkctl::app
