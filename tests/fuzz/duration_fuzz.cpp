// libFuzzer target for the value parsers of src/plan/durations.hpp (durations, sizes and signal names), which
// read options from the command line, a config file and `ctl`: any bytes, given to each, must give a value or
// an error, never a crash or undefined behaviour (an overflowing number among them). What parses must survive
// its own formatting:
// - format_duration() of a duration parses back to it;
// - format_size() of a size ("512 MiB", "1000 bytes") written without its space parses back to it;
// - signal_name() of a signal parses back to it, or is "signal N" for a number without a name.
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "plan/durations.hpp"

namespace {

using namespace preforkctl::plan;

void check(bool condition) {
    if (!condition) __builtin_trap();
}

void check_duration(std::string_view text) {
    const auto duration = parse_duration(text);
    if (!duration) return;
    check(duration->count() >= 0);
    const std::string shown = format_duration(*duration);
    const auto again = parse_duration(shown);
    check(again.ok() && *again == *duration);
}

void check_size(std::string_view text) {
    const auto size = parse_size(text);
    if (!size) return;
    const std::string shown = format_size(*size);
    const std::size_t space = shown.find(' ');
    check(space != std::string::npos);
    std::string written = shown.substr(0, space);
    const std::string unit = shown.substr(space + 1);
    if (unit != "byte" && unit != "bytes") written += unit;
    const auto again = parse_size(written);
    check(again.ok() && *again == *size);
}

void check_signal_name(int signal) {
    const std::string name = signal_name(signal);
    if (name.starts_with("SIG")) {
        const auto again = parse_signal(name);
        check(again.ok() && *again == signal);
    } else {
        check(name == "signal " + std::to_string(signal));
    }
}

void check_signal(std::string_view text) {
    const auto signal = parse_signal(text);
    if (!signal) return;
    check(*signal > 0 && *signal < NSIG);
    check_signal_name(*signal);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    check_duration(bytes);
    check_size(bytes);
    check_signal(bytes);
    // Any number as a signal, as a worker's exit status can carry one.
    if (size >= sizeof(int)) {
        int signal = 0;
        std::memcpy(&signal, data, sizeof signal);
        check_signal_name(signal);
    }
    return 0;
}
