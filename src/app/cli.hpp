#pragma once
// The command line (CLI11 is included in cli.cpp only).

#include <optional>
#include <string>

#include <vector>

#include "app/completion.hpp"
#include "config/settings.hpp"

namespace preforkctl::app {

/// What the command line asks for: settings to run with, or an exit status (help, version, usage error
/// already printed).
struct CommandLine {
    config::Settings settings;
    std::optional<int> exit_now;
};

/// Parses argv. Errors print one "preforkctl: error: ..." line (through the default logger, so a JSON line
/// with `--log-format json`) and set exit_now to 2.
CommandLine parse_command_line(int argc, char** argv);

/// The value of the last `--log-format` among preforkctl's own arguments (those before "--"), as given, or ""
/// without one. Read before the command line is parsed, so that a usage error, or a config file that cannot
/// be read, already comes out in the format the command line asks for.
std::string requested_log_format(const std::vector<std::string>& args);

/// Every option of --help, in its order (the completion scripts are made from it).
std::vector<OptionEntry> option_table();

/// `preforkctl completion bash|zsh|fish` (argv[0] is "completion"): prints the script; 2 for anything else.
int run_completion(int argc, char** argv);

}  // namespace preforkctl::app
