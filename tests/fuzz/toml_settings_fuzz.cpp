// libFuzzer target for the config file reader (config::load_toml_settings_text, the path loader's parser and
// key reader): any bytes must give Settings or an Error, never a crash, undefined behaviour or an exception
// (toml++ throws on a syntax error; an exception escaping here aborts, which libFuzzer reports). Every error
// is a config error that names the file and where in it ("NAME:LINE:COL: ..."), and so is every origin.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/toml_settings.hpp"

namespace {

using preforkctl::ExitCode;
using preforkctl::config::load_toml_settings_text;
using preforkctl::config::Setting;

const std::string kName = "fuzz.toml";

void check(bool condition) {
    if (!condition) __builtin_trap();
}

// "fuzz.toml:LINE:COL", or that followed by ": ..." in an error; lines and columns count from 1.
void check_position(std::string_view text) {
    check(text.starts_with(kName + ":"));
    text.remove_prefix(kName.size() + 1);
    for (int number = 0; number < 2; ++number) {
        const std::size_t digits = text.find_first_not_of("0123456789");
        check(!text.empty() && digits != 0 && text.front() != '0');
        text.remove_prefix(digits == std::string_view::npos ? text.size() : digits);
        if (number == 0) {
            check(text.starts_with(':'));
            text.remove_prefix(1);
        }
    }
    check(text.empty() || text.starts_with(": "));
}

template <class T>
void check_origin(const std::optional<Setting<T>>& setting) {
    if (setting) check_position(setting->origin);
}

void check_origins(const std::vector<Setting<std::string>>& settings) {
    for (const auto& setting : settings) check_position(setting.origin);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto settings = load_toml_settings_text(bytes, kName);
    if (!settings) {
        check(settings.error().exit == ExitCode::config);
        check_position(settings.error().message);
        return 0;
    }
    check(!settings->config_file);
    check(settings->verbosity >= -1 && settings->verbosity <= 3);
    check_origins(settings->listen);
    check_origins(settings->env);
    check_origins(settings->rewrite_signal);
    check_origin(settings->workers);
    check_origin(settings->affinity);
    check_origin(settings->max_restarts);
    check_origin(settings->stop_timeout);
    check_origin(settings->success_exit);
    check_origin(settings->command);
    if (settings->command) check(!settings->command->value.empty());
    return 0;
}
