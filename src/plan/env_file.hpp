#pragma once
// The KEY=VALUE files of --env-file (SPEC §15), read as Docker's --env-file and systemd's EnvironmentFile=
// read them, within the small common ground documented in the man page. Pure: the text comes in, sys/ reads it.

#include <string>
#include <string_view>
#include <vector>

#include "sys/result.hpp"

namespace preforkctl::plan {

/// One variable an env file sets.
struct EnvAssignment {
    std::string name;
    std::string value;

    bool operator==(const EnvAssignment&) const = default;
};

/// Parses the text of the env file `file` (named in messages as given). One KEY=VALUE per line; blank lines
/// and lines whose first non-blank character is '#' or ';' are skipped; an "export " before KEY is dropped;
/// blanks around KEY, after '=' and at the end of the line are dropped. KEY is [A-Za-z_][A-Za-z0-9_]*. A VALUE
/// in single quotes is taken as written; in double quotes \" \\ \$ and \` stand for the character and any
/// other backslash stays (systemd); a quoted VALUE ends on its line, and only blanks may follow it; an
/// unquoted VALUE is taken as written (Docker). A later line of the same KEY wins. Errors are
/// "FILE:LINE: why" with exit code `config`; they never repeat the line, which may hold a secret.
Result<std::vector<EnvAssignment>> parse_env_file(std::string_view text, const std::string& file);

}  // namespace preforkctl::plan
