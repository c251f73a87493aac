#include "supervise/forwarding.hpp"

namespace preforkctl::supervise {

std::optional<Forward> forward_of(const plan::ForwardSpec& spec, int received) {
    int signal = received;
    if (auto rewrite = spec.rewrites.find(received); rewrite != spec.rewrites.end()) signal = rewrite->second;
    if (signal == 0) return std::nullopt;
    return Forward{signal, spec.scope == plan::SignalScope::group};
}

}  // namespace preforkctl::supervise
