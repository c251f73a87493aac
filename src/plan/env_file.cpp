#include "plan/env_file.hpp"

#include <optional>

namespace preforkctl::plan {

namespace {

constexpr std::string_view kBlanks = " \t\r";  // '\r': a file written on Windows ends its lines with "\r\n"

std::string_view trimmed(std::string_view text) {
    const std::size_t first = text.find_first_not_of(kBlanks);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(kBlanks) - first + 1);
}

bool is_variable_name(std::string_view name) {
    if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
    for (const char c : name) {
        const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (!letter && !(c >= '0' && c <= '9') && c != '_') return false;
    }
    return true;
}

// A value that starts with a quote, up to its closing quote; nullopt when the line ends first. `rest` is left
// with what follows the closing quote.
std::optional<std::string> unquoted(std::string_view value, std::string_view& rest) {
    const char quote = value.front();
    std::string out;
    for (std::size_t i = 1; i < value.size(); ++i) {
        const char c = value[i];
        if (c == quote) {
            rest = value.substr(i + 1);
            return out;
        }
        // systemd's EnvironmentFile=: in double quotes a backslash escapes what a shell would need escaped
        // there, and is kept before anything else ("\n" stays two characters).
        if (quote == '"' && c == '\\' && i + 1 < value.size()) {
            const char next = value[i + 1];
            if (next == '"' || next == '\\' || next == '$' || next == '`') {
                out += next;
                ++i;
                continue;
            }
        }
        out += c;
    }
    return std::nullopt;
}

}  // namespace

Result<std::vector<EnvAssignment>> parse_env_file(std::string_view text, const std::string& file) {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte order mark, as Docker skips it
    std::vector<EnvAssignment> assignments;
    int number = 0;
    while (!text.empty()) {
        const std::size_t newline = text.find('\n');
        const std::string_view raw = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        ++number;
        // Built piece by piece: "literal" + std::string&& is a false -Wrestrict with GCC 12.
        auto error = [&](const std::string& why) {
            std::string message = file;
            message += ':';
            message += std::to_string(number);
            message += ": ";
            message += why;
            return Error{message, 0, ExitCode::config};
        };
        std::string_view line = trimmed(raw);
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;
        if (line.find('\0') != std::string_view::npos) return error("a NUL byte cannot be part of the environment");
        if (line.starts_with("export") && line.size() > 6 && (line[6] == ' ' || line[6] == '\t')) {
            line = trimmed(line.substr(6));
        }
        const std::size_t eq = line.find('=');
        if (eq == std::string_view::npos) return error("expected KEY=VALUE, found no '='");
        const std::string_view name = trimmed(line.substr(0, eq));
        if (!is_variable_name(name)) {
            std::string why = "invalid variable name '";
            why += name;
            why += "' (letters, digits and '_', not starting with a digit)";
            return error(why);
        }
        std::string_view value = trimmed(line.substr(eq + 1));
        EnvAssignment assignment{std::string(name), std::string(value)};
        if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
            std::string_view rest;
            auto inside = unquoted(value, rest);
            if (!inside) {
                std::string why = "no closing ";
                why += value.front();
                why += " (a quoted value ends on its line)";
                return error(why);
            }
            if (!trimmed(rest).empty()) return error("only blanks may follow the closing quote of a value");
            assignment.value = std::move(*inside);
        }
        assignments.push_back(std::move(assignment));
    }
    return assignments;
}

}  // namespace preforkctl::plan
