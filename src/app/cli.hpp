#pragma once
// The command line (CLI11 is included in cli.cpp only).

#include <optional>
#include <string>

#include "config/settings.hpp"

namespace preforkctl::app {

/// What the command line asks for: settings to run with, or an exit status (help, version, usage error
/// already printed).
struct CommandLine {
    config::Settings settings;
    std::optional<int> exit_now;
};

/// Parses argv. Errors print one "preforkctl: error: ..." line and set exit_now to 2.
CommandLine parse_command_line(int argc, char** argv);

}  // namespace preforkctl::app
