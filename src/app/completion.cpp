#include "app/completion.hpp"

#include <algorithm>
#include <map>
#include <sstream>

namespace preforkctl::app {

namespace {

// Options whose value is one of a few words, each named in its --help text (describe_option's promise).
const std::map<std::string, std::vector<std::string>>& choice_table() {
    static const std::map<std::string, std::vector<std::string>> table = {
        {"workers", {"auto"}},
        {"socket-mode", {"shared", "reuseport", "child"}},
        {"steer", {"none", "cpu"}},
        {"fd-env", {"systemd", "einhorn", "server-starter"}},
        {"restart", {"always", "on-failure", "never"}},
        {"on-threshold", {"exit", "park"}},
        {"signal-scope", {"group", "worker"}},
        {"ready", {"none", "notify", "delay:"}},
        {"log-format", {"prefix", "json", "raw", "inherit"}},
        {"color", {"auto", "always", "never"}},
        {"log-overflow", {"block", "drop"}},
        {"control", {"auto", "none"}},
    };
    return table;
}

// Options whose value is a path: a file (with any choices above besides), or a directory.
const std::map<std::string, ValueKind>& path_table() {
    static const std::map<std::string, ValueKind> table = {
        {"config", ValueKind::file},
        {"control", ValueKind::file},
        {"env-file", ValueKind::file},
        {"chdir", ValueKind::directory},
    };
    return table;
}

// The first clause of a help text, for the one-line descriptions of zsh and fish.
std::string summary(const std::string& help) {
    std::size_t end = help.size();
    for (const char* stop : {" (", ";", ", e.g.", ". "}) end = std::min(end, help.find(stop));
    if (const std::size_t colon = help.find(": "); colon != std::string::npos && colon > 20) end = std::min(end, colon);
    std::string text = help.substr(0, end);
    if (text.size() > 70) text = text.substr(0, text.rfind(' ', 67)) + "...";
    return text;
}

std::string join(const std::vector<std::string>& words) {
    std::string text;
    for (const std::string& word : words) text += (text.empty() ? "" : " ") + word;
    return text;
}

// Inside single quotes: a quote ends them, so it becomes '\''.
std::string single_quoted(const std::string& text) {
    std::string quoted;
    for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted;
}

// zsh's _arguments descriptions may not hold [ ] or : unescaped.
std::string zsh_description(const std::string& text) {
    std::string escaped;
    for (const char c : text) {
        if (c == '[' || c == ']' || c == ':' || c == '\\') escaped += '\\';
        escaped += c;
    }
    return single_quoted(escaped);
}

// What zsh and fish show beside an option: its choices when it has them (a help text that begins with its
// default choice says too little in one clause), else the first clause of its help.
std::string description_of(const OptionEntry& option) {
    if (option.value != ValueKind::choice) return summary(option.help);
    std::string text;
    for (const std::string& choice : option.choices) text += (text.empty() ? "" : " | ") + choice;
    return text;
}

std::string bash_script(const std::vector<OptionEntry>& options) {
    std::ostringstream out;
    std::vector<std::string> all;
    for (const OptionEntry& option : options) {
        if (!option.short_name.empty()) all.push_back("-" + option.short_name);
        all.push_back("--" + option.long_name);
    }
    out << "# bash completion for preforkctl, made by `preforkctl completion bash` from its option table.\n"
           "_preforkctl_names() {\n"
           "    local socket\n"
           "    for socket in \"${XDG_RUNTIME_DIR:-/nonexistent}\"/preforkctl/*.sock /run/preforkctl/*.sock "
           "/tmp/preforkctl-\"$UID\"/*.sock; do\n"
           "        [[ -S $socket ]] && socket=${socket##*/} && printf '%s\\n' \"${socket%.sock}\"\n"
           "    done\n"
           "}\n"
           "_preforkctl() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev= i\n"
           "    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "    # --option=value: bash splits the word at '='.\n"
           "    if [[ $cur == = ]]; then cur=; elif [[ $prev == = ]] && (( COMP_CWORD > 1 )); then "
           "prev=${COMP_WORDS[COMP_CWORD-2]}; fi\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        if [[ ${COMP_WORDS[i]} == -- ]]; then\n"
           "            # The server command, then its arguments.\n"
           "            if (( i == COMP_CWORD - 1 )); then COMPREPLY=($(compgen -c -- \"$cur\")); "
           "else compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); fi\n"
           "            return\n"
           "        fi\n"
           "    done\n"
           "    if [[ ${COMP_WORDS[1]} == ctl ]] && (( COMP_CWORD > 1 )); then\n"
           "        case $prev in\n"
           "            --name) COMPREPLY=($(compgen -W \"$(_preforkctl_names)\" -- \"$cur\")); return ;;\n"
           "            --socket) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
           "            --color) COMPREPLY=($(compgen -W \"auto always never\" -- \"$cur\")); return ;;\n"
           "            --binary) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
           "        esac\n"
           "        if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \""
        << join(ctl_options()) << " --binary --timeout\" -- \"$cur\"))\n"
        << "        else COMPREPLY=($(compgen -W \"" << join(ctl_commands()) << "\" -- \"$cur\")); fi\n"
        << "        return\n"
           "    fi\n"
           "    if [[ ${COMP_WORDS[1]} == completion ]] && (( COMP_CWORD == 2 )); then\n"
           "        COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\")); return\n"
           "    fi\n"
           "    case $prev in\n";
    for (const OptionEntry& option : options) {
        if (option.value == ValueKind::none) continue;
        std::string pattern = "--" + option.long_name;
        if (!option.short_name.empty()) pattern = "-" + option.short_name + "|" + pattern;
        out << "        " << pattern << ") ";
        const std::string words = join(option.choices);
        switch (option.value) {
            case ValueKind::choice:
                out << "COMPREPLY=($(compgen -W \"" << words << "\" -- \"$cur\"))";
                break;
            case ValueKind::file:
                out << "compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")";
                if (!words.empty()) out << " $(compgen -W \"" << words << "\" -- \"$cur\")";
                out << ")";
                break;
            case ValueKind::directory:
                out << "compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- \"$cur\"))";
                break;
            case ValueKind::word:
            case ValueKind::none:
                out << ":";  // a value only the user knows
                break;
        }
        out << "; return ;;\n";
    }
    out << "    esac\n"
           "    if [[ $cur == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W \""
        << join(all) << " --\" -- \"$cur\"))\n"
        << "    elif (( COMP_CWORD == 1 )); then\n"
           "        COMPREPLY=($(compgen -W \"ctl completion\" -- \"$cur\"))\n"
           "    fi\n"
           "}\n"
           "complete -F _preforkctl preforkctl\n";
    return out.str();
}

std::string zsh_script(const std::vector<OptionEntry>& options) {
    std::ostringstream out;
    out << "#compdef preforkctl\n"
           "# zsh completion for preforkctl, made by `preforkctl completion zsh` from its option table.\n"
           "_preforkctl_names() {\n"
           "  local -a names\n"
           "  names=(${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/preforkctl/*.sock(N=:t:r)} /run/preforkctl/*.sock(N=:t:r) "
           "/tmp/preforkctl-$UID/*.sock(N=:t:r))\n"
           "  compadd -a names\n"
           "}\n"
           "_preforkctl() {\n"
           "  if [[ ${words[2]} == ctl ]]; then\n"
           "    shift words; (( CURRENT-- ))\n"
           "    _arguments -s \\\n"
           "      '--name=[the preforkctl started with --name NAME]:name:_preforkctl_names' \\\n"
           "      '--socket=[the control socket at PATH]:socket:_files' \\\n"
           "      '--json[status as one JSON document]' \\\n"
           "      '--no-wait[answer once begun]' \\\n"
           "      '--color=[colour the status table]:when:(auto always never)' \\\n"
           "      '--binary=[upgrade: the new preforkctl]:binary:_files' \\\n"
           "      '(-h --help)'{-h,--help}'[help]' \\\n"
           "      '1:command:("
        << join(ctl_commands())
        << ")' \\\n"
           "      '*::argument:_default'\n"
           "    return\n"
           "  fi\n"
           "  if [[ ${words[2]} == completion ]]; then\n"
           "    _arguments '1:subcommand:(completion)' '2:shell:(bash zsh fish)'\n"
           "    return\n"
           "  fi\n"
           "  _arguments -s -S \\\n";
    for (const OptionEntry& option : options) {
        const bool value = option.value != ValueKind::none;
        const std::string description = zsh_description(description_of(option));
        out << "    ";
        if (option.short_name.empty()) {
            out << "'--" << option.long_name << (value ? "=" : "") << "[" << description << "]";
        } else {
            out << "'(-" << option.short_name << " --" << option.long_name << ")'{-" << option.short_name
                << (value ? "+" : "") << ",--" << option.long_name << (value ? "=" : "") << "}'[" << description
                << "]";
        }
        switch (option.value) {
            case ValueKind::none: break;
            case ValueKind::word: out << ":value: "; break;
            case ValueKind::choice: out << ":value:(" << join(option.choices) << ")"; break;
            case ValueKind::file:
                out << ":path:" << (option.choices.empty() ? "_files" : "{compadd " + join(option.choices) + "; _files}");
                break;
            case ValueKind::directory: out << ":directory:_files -/"; break;
        }
        out << "' \\\n";
    }
    out << "    '*::server command:_normal'\n"
           "}\n"
           "_preforkctl \"$@\"\n";
    return out.str();
}

std::string fish_script(const std::vector<OptionEntry>& options) {
    std::ostringstream out;
    out << "# fish completion for preforkctl, made by `preforkctl completion fish` from its option table.\n"
           "function __preforkctl_names\n"
           "    for socket in $XDG_RUNTIME_DIR/preforkctl/*.sock /run/preforkctl/*.sock /tmp/preforkctl-(id -u)/*.sock\n"
           "        basename $socket .sock\n"
           "    end\n"
           "end\n"
           "function __preforkctl_own\n"
           "    # preforkctl's own options: not after `--`, and not for ctl or completion.\n"
           "    set -l words (commandline -opc)\n"
           "    not contains -- -- $words; and not contains -- ctl $words[2]; and not contains -- completion $words[2]\n"
           "end\n"
           "complete -c preforkctl -n '__fish_use_subcommand' -f -a 'ctl' -d 'Steer a running preforkctl'\n"
           "complete -c preforkctl -n '__fish_use_subcommand' -f -a 'completion' -d 'Print a completion script'\n"
           "complete -c preforkctl -n '__fish_seen_subcommand_from completion' -f -a 'bash zsh fish'\n"
           "complete -c preforkctl -n '__fish_seen_subcommand_from ctl' -f -a '"
        << join(ctl_commands())
        << "'\n"
           "complete -c preforkctl -n '__fish_seen_subcommand_from ctl' -l name -x -a '(__preforkctl_names)' "
           "-d 'The preforkctl started with --name NAME'\n"
           "complete -c preforkctl -n '__fish_seen_subcommand_from ctl' -l socket -r -F -d 'The control socket at PATH'\n"
           "complete -c preforkctl -n '__fish_seen_subcommand_from ctl' -l json -d 'Status as one JSON document'\n"
           "complete -c preforkctl -n '__fish_seen_subcommand_from ctl' -l no-wait -d 'Answer once begun'\n"
           "complete -c preforkctl -n '__fish_seen_subcommand_from ctl' -l color -x -a 'auto always never'\n"
           "complete -c preforkctl -n '__fish_seen_subcommand_from ctl' -l binary -r -F -d 'upgrade: the new preforkctl'\n";
    for (const OptionEntry& option : options) {
        out << "complete -c preforkctl -n __preforkctl_own";
        if (!option.short_name.empty()) out << " -s " << option.short_name;
        out << " -l " << option.long_name;
        switch (option.value) {
            case ValueKind::none: break;
            case ValueKind::word: out << " -x"; break;
            case ValueKind::choice: out << " -x -a '" << join(option.choices) << "'"; break;
            case ValueKind::file:
                out << " -r -F";
                if (!option.choices.empty()) out << " -a '" << join(option.choices) << "'";
                break;
            case ValueKind::directory: out << " -x -a '(__fish_complete_directories)'"; break;
        }
        out << " -d '" << single_quoted(description_of(option)) << "'\n";
    }
    return out.str();
}

}  // namespace

std::optional<Shell> shell_from_name(std::string_view name) {
    if (name == "bash") return Shell::bash;
    if (name == "zsh") return Shell::zsh;
    if (name == "fish") return Shell::fish;
    return std::nullopt;
}

OptionEntry describe_option(std::string long_name, std::string short_name, std::string help, bool takes_value) {
    OptionEntry option{std::move(long_name), std::move(short_name), std::move(help), ValueKind::none, {}};
    if (!takes_value) return option;
    option.value = ValueKind::word;
    if (const auto found = choice_table().find(option.long_name); found != choice_table().end()) {
        option.value = ValueKind::choice;
        option.choices = found->second;
    }
    if (const auto found = path_table().find(option.long_name); found != path_table().end()) {
        option.value = found->second;
    }
    return option;
}

const std::vector<std::string>& ctl_commands() {
    static const std::vector<std::string> commands = {"status", "scale",  "restart", "reload",
                                                      "stop",   "signal", "upgrade"};
    return commands;
}

const std::vector<std::string>& ctl_options() {
    static const std::vector<std::string> options = {"--name", "--socket", "--json", "--no-wait", "--color",
                                                     "--help"};
    return options;
}

std::string completion_script(Shell shell, const std::vector<OptionEntry>& options) {
    switch (shell) {
        case Shell::bash: return bash_script(options);
        case Shell::zsh: return zsh_script(options);
        case Shell::fish: return fish_script(options);
    }
    return "";
}

}  // namespace preforkctl::app
