#include "metrics/address.hpp"

namespace preforkctl::metrics {

std::string format_metrics_address(const MetricsAddress& address) {
    const bool ipv6 = address.host.find(':') != std::string::npos;
    const std::string host = ipv6 ? "[" + address.host + "]" : address.host;
    return host + ":" + std::to_string(address.port);
}

}  // namespace preforkctl::metrics
