#pragma once
// HostFacts: what the machine says, gathered once before planning (sys::gather_host_facts).

#include <optional>
#include <string>
#include <vector>

#include "plan/cpus.hpp"

namespace preforkctl::plan {

/// Result of looking the command up (PATH search and an execute-permission check).
struct CommandLookup {
    std::string path;  // resolved executable, empty when not found
    int error = 0;     // errno of the failed lookup (ENOENT, EACCES, ...), 0 when executable
};

struct HostFacts {
    CpuFacts cpus;
    CommandLookup command;
    std::vector<std::string> environment;  // preforkctl's own environment, "K=V"
    int pid = 0;                           // preforkctl's pid
};

}  // namespace preforkctl::plan
