#pragma once
// Shared by the planners (make_plan.cpp, plan_*.cpp): reading one setting and saying where it was wrong.

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/settings.hpp"
#include "plan/durations.hpp"
#include "sys/result.hpp"

namespace preforkctl::plan {

// An error about one setting: flags are usage errors, config-file values are config errors.
template <class T>
Error setting_error(const config::Setting<T>& setting, const std::string& option, const std::string& why) {
    if (setting.origin.starts_with("-")) {
        return Error{setting.origin + ": " + why, 0, ExitCode::usage};
    }
    return Error{setting.origin + ": " + option + ": " + why, 0, ExitCode::config};
}

// A warning about a setting that is accepted but does nothing, worded like setting_error.
template <class T>
std::string setting_warning(const config::Setting<T>& setting, const std::string& option, const std::string& why) {
    if (setting.origin.starts_with("-")) {
        return setting.origin + ": " + why;
    }
    return setting.origin + ": " + option + ": " + why;
}

template <class T, class Parse>
auto parse_setting(const std::optional<config::Setting<std::string>>& setting, const std::string& option,
                   T fallback, Parse parse) -> Result<T> {
    if (!setting) {
        return fallback;
    }
    auto parsed = parse(setting->value);
    if (!parsed) {
        return setting_error(*setting, option, parsed.error().message);
    }
    return *parsed;
}

template <class Enum>
Result<Enum> parse_choice(const std::optional<config::Setting<std::string>>& setting, const std::string& option,
                          Enum fallback, std::initializer_list<std::pair<const char*, Enum>> choices) {
    return parse_setting<Enum>(setting, option, fallback, [&](const std::string& value) -> Result<Enum> {
        std::string names;
        for (const auto& [name, choice] : choices) {
            if (value == name) {
                return choice;
            }
            names += names.empty() ? name : std::string("|") + name;
        }
        return Error{"must be one of " + names + ", got '" + value + "'"};
    });
}

inline Result<Millis> parse_duration_setting(const std::optional<config::Setting<std::string>>& setting,
                                      const std::string& option, Millis fallback) {
    return parse_setting<Millis>(setting, option, fallback, [](const std::string& v) { return parse_duration(v); });
}

// A duration that must be above 0 when given.
inline Result<Millis> parse_positive_duration(const std::optional<config::Setting<std::string>>& setting,
                                              const std::string& option, Millis fallback) {
    auto duration = parse_duration_setting(setting, option, fallback);
    if (duration && setting && duration->count() == 0) {
        return setting_error(*setting, option, "must be above 0");
    }
    return duration;
}

/// Comma-separated items, spaces around each one trimmed; an empty item is kept (and rejected by the caller).
std::vector<std::string> split_list(const std::string& text);

}  // namespace preforkctl::plan
