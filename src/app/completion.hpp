#pragma once
// `preforkctl completion bash|zsh|fish`: shell completion scripts made from the option table that --help is
// made from (cli.cpp hands it over), so that a new option completes without anyone remembering to add it.
// Pure: text in, text out.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkctl::app {

enum class Shell { bash, zsh, fish };

/// "bash", "zsh" or "fish".
std::optional<Shell> shell_from_name(std::string_view name);

/// What a value of an option is, for the shell to offer.
enum class ValueKind {
    none,       // a flag
    word,       // free text: nothing to offer
    choice,     // one of `choices`
    file,       // a path
    directory,  // a directory
};

/// One option as --help lists it.
struct OptionEntry {
    std::string long_name;   // "socket-mode"
    std::string short_name;  // "n", or ""
    std::string help;        // its --help text
    ValueKind value = ValueKind::none;
    std::vector<std::string> choices;
};

/// The value kind and choices of `long_name`, a CLI option that takes a value (`takes_value`). The choices are
/// the words its --help text names: each listed one must appear there (a test checks it), so they drift
/// together.
OptionEntry describe_option(std::string long_name, std::string short_name, std::string help, bool takes_value);

/// The words `preforkctl ctl` takes: its commands, then its own options.
const std::vector<std::string>& ctl_commands();
const std::vector<std::string>& ctl_options();

/// The completion script for `shell`.
std::string completion_script(Shell shell, const std::vector<OptionEntry>& options);

}  // namespace preforkctl::app
