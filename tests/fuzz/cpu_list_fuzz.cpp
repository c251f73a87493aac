// libFuzzer target for CPU lists (plan::parse_cpu_list), which --cpus takes from the user and sysfs and cgroup
// files give in the kernel's syntax: any bytes must give a list or an error, never a crash or undefined
// behaviour. What parses is sorted and free of duplicates, and format_cpu_list() of it is a fixed point: it
// parses back to the same list and formats to the same text.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "plan/cpus.hpp"

namespace {

using preforkctl::plan::format_cpu_list;
using preforkctl::plan::parse_cpu_list;

void check(bool condition) {
    if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto cpus = parse_cpu_list(bytes);
    if (!cpus) return 0;
    check(std::adjacent_find(cpus->begin(), cpus->end(), [](int a, int b) { return a >= b; }) == cpus->end());
    check(cpus->empty() || cpus->front() >= 0);

    const std::string text = format_cpu_list(*cpus);
    const auto again = parse_cpu_list(text);
    check(again.ok() && *again == *cpus);
    check(format_cpu_list(*again) == text);
    return 0;
}
