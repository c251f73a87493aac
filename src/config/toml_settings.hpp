#pragma once
// Reads a TOML config file into Settings (toml++ is included in the .cpp only).

#include <string>

#include "config/settings.hpp"
#include "sys/result.hpp"

namespace preforkctl::config {

/// Parses `path`. Keys are the long option names (with '-' or '_'), plus `command = [..]` and listener
/// tables `[[listen]] address = "..." name = "..." backlog = N mode = "0660"`. Unknown keys, wrong types
/// and syntax errors give an Error "FILE:LINE:COL: ..." with exit code `config`.
Result<Settings> load_toml_settings(const std::string& path);

}  // namespace preforkctl::config
