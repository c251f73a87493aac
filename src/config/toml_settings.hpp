#pragma once
// Reads a TOML config file into Settings (toml++ is included in the .cpp only).

#include <string>
#include <string_view>

#include "config/settings.hpp"
#include "sys/result.hpp"

namespace preforkctl::config {

/// Parses `path`. Keys are the long option names (with '-' or '_'), plus `command = [..]` and listener
/// tables `[[listen]] address = "..." name = "..." backlog = N mode = "0660"`. Unknown keys, wrong types
/// and syntax errors give an Error "FILE:LINE:COL: ..." with exit code `config`.
Result<Settings> load_toml_settings(const std::string& path);

/// Parses `text` as load_toml_settings() parses a file's content, with `name` in place of the file name in
/// errors and origins ("NAME:LINE:COL"). Leaves Settings::config_file unset.
Result<Settings> load_toml_settings_text(std::string_view text, const std::string& name);

}  // namespace preforkctl::config
