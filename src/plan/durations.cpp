#include "plan/durations.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <csignal>
#include <limits>
#include <utility>

namespace preforkctl::plan {

Result<Millis> parse_duration(std::string_view text) {
    auto bad = [&] { return Error{"invalid duration '" + std::string(text) + "' (use e.g. 250ms, 5s, 2m)"}; };
    std::int64_t number = 0;
    const char* end = text.data() + text.size();
    auto [rest, ec] = std::from_chars(text.data(), end, number);
    if (ec != std::errc{} || number < 0 || rest == text.data()) {
        return bad();
    }
    const std::string_view unit(rest, static_cast<std::size_t>(end - rest));
    std::int64_t scale = 0;
    if (unit.empty() || unit == "s") {
        scale = 1000;
    } else if (unit == "ms") {
        scale = 1;
    } else if (unit == "m" || unit == "min") {
        scale = 60 * 1000;
    } else if (unit == "h") {
        scale = 3600 * 1000;
    } else {
        return bad();
    }
    if (number > std::numeric_limits<std::int64_t>::max() / scale / 1000) {
        return bad();
    }
    return Millis(number * scale);
}

std::string format_duration(Millis duration) {
    const auto ms = duration.count();
    if (ms != 0 && ms % (3600 * 1000) == 0) return std::to_string(ms / (3600 * 1000)) + "h";
    if (ms != 0 && ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

namespace {

// Binary multiples: --max-rss compares with RSS, which the kernel counts in pages of 4 KiB.
constexpr std::array<std::pair<const char*, int>, 4> kSizeUnits{{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}}};

// The power of two a size suffix stands for, or -1: "" (bytes), "K", "k", "KiB" and the same for M, G, T.
int size_shift(std::string_view unit) {
    if (unit.empty()) return 0;
    for (const auto& [name, shift] : kSizeUnits) {
        const auto letter = static_cast<unsigned char>(name[0]);
        const bool single = unit.size() == 1 && std::toupper(static_cast<unsigned char>(unit[0])) == letter;
        if (single || unit == name) return shift;
    }
    return -1;
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text) {
    auto bad = [&] { return Error{std::string("invalid size '") + std::string(text) + "' (use e.g. 512M, 2G)"}; };
    std::uint64_t number = 0;
    const char* end = text.data() + text.size();
    auto [rest, ec] = std::from_chars(text.data(), end, number);
    if (ec != std::errc{} || rest == text.data()) return bad();
    const int shift = size_shift(std::string_view(rest, static_cast<std::size_t>(end - rest)));
    if (shift < 0 || number > (std::numeric_limits<std::uint64_t>::max() >> shift)) return bad();
    return number << shift;
}

std::string format_size(std::uint64_t bytes) {
    for (auto unit = kSizeUnits.rbegin(); unit != kSizeUnits.rend(); ++unit) {
        const std::uint64_t scale = std::uint64_t{1} << unit->second;
        if (bytes != 0 && bytes % scale == 0) return std::to_string(bytes / scale) + " " + unit->first;
    }
    return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

namespace {

constexpr std::array<std::pair<const char*, int>, 31> kSignals{{
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT},   {"ILL", SIGILL},   {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},     {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},   {"URG", SIGURG},     {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},  {"PWR", SIGPWR},
    {"SYS", SIGSYS},
}};

}  // namespace

Result<int> parse_signal(std::string_view text) {
    std::string name(text);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
    if (name.starts_with("SIG")) {
        name.erase(0, 3);
    }
    for (const auto& [known, number] : kSignals) {
        if (name == known) {
            return number;
        }
    }
    int number = 0;
    auto [rest, ec] = std::from_chars(name.data(), name.data() + name.size(), number);
    if (ec == std::errc{} && rest == name.data() + name.size() && number > 0 && number < NSIG) {
        return number;
    }
    return Error{"unknown signal '" + std::string(text) + "'"};
}

std::string signal_name(int signal) {
    for (const auto& [known, number] : kSignals) {
        if (number == signal) {
            return std::string("SIG") + known;
        }
    }
    return "signal " + std::to_string(signal);
}

}  // namespace preforkctl::plan
