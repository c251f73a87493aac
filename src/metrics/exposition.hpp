#pragma once
// The Prometheus text exposition format (0.0.4) of a status snapshot. Pure.

#include <string>

#include "control/snapshot.hpp"

namespace preforkctl::metrics {

/// Every preforkctl_* metric of `snapshot`, each with its HELP and TYPE lines.
std::string render_metrics(const control::Snapshot& snapshot);

}  // namespace preforkctl::metrics
