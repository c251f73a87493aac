// libFuzzer target for the upgrade state reader (upgrade::decode), which the new image runs on whatever the
// old one left in the memfd: any bytes must give a State or an error, never a crash, undefined behaviour or
// an exception. What decodes must survive the trip the next upgrade makes: encode() of it decodes to an
// equal State and encodes to the same text; and the descriptors it names are sorted, distinct and not negative.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "upgrade/state.hpp"

namespace {

using namespace preforkctl::upgrade;

void check(bool condition) {
    if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto state = decode(bytes);
    if (!state) {
        check(!state.error().message.empty());
        return 0;
    }
    check(state->version == kStateVersion);

    const std::string text = encode(*state);
    const auto again = decode(text);
    check(again.ok() && *again == *state);
    check(encode(*again) == text);

    const std::vector<int> fds = descriptors(*state);
    check(std::adjacent_find(fds.begin(), fds.end(), [](int a, int b) { return a >= b; }) == fds.end());
    check(fds.empty() || fds.front() >= 0);
    return 0;
}
