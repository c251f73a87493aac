#include "sys/children.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace preforkctl::sys {

bool has_children() {
    siginfo_t info{};
    return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

std::optional<std::vector<pid_t>> child_pids() {
    // The supervisor is single-threaded, so its main thread's list holds every child (CONFIG_PROC_CHILDREN,
    // enabled in distribution kernels).
    const std::string self = std::to_string(::getpid());
    std::ifstream in("/proc/" + self + "/task/" + self + "/children");
    if (!in) return std::nullopt;
    std::vector<pid_t> pids;
    long pid = 0;
    while (in >> pid) pids.push_back(static_cast<pid_t>(pid));
    return pids;
}

}  // namespace preforkctl::sys
