#include "sys/host.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "sys/host_cpus.hpp"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX leaves it undeclared

namespace preforkctl::sys {

namespace {

// 0 when `path` is an executable regular file, otherwise the errno execve would give.
int check_executable(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) {
        return errno;
    }
    if (!S_ISREG(st.st_mode)) {
        return EACCES;
    }
    return ::access(path.c_str(), X_OK) == 0 ? 0 : errno;
}

std::string absolute(const std::string& path) {
    if (path.starts_with('/')) {
        return path;
    }
    char* cwd = ::getcwd(nullptr, 0);
    if (cwd == nullptr) {
        return path;
    }
    std::string result = std::string(cwd) + "/" + (path.starts_with("./") ? path.substr(2) : path);
    std::free(cwd);  // NOLINT(cppcoreguidelines-no-malloc): getcwd(nullptr) allocates with malloc
    return result;
}

}  // namespace

plan::CommandLookup find_command(const std::string& command) {
    if (command.empty()) {
        return {"", ENOENT};
    }
    if (command.find('/') != std::string::npos) {
        const int error = check_executable(command);
        return {error == 0 ? absolute(command) : "", error};
    }
    const char* path_env = std::getenv("PATH");
    const std::string search = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
    int first_error = ENOENT;
    std::size_t start = 0;
    for (;;) {
        const std::size_t colon = search.find(':', start);
        std::string dir = search.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + command;
        const int error = check_executable(candidate);
        if (error == 0) {
            return {absolute(candidate), 0};
        }
        // As execvp: a file that exists but cannot be run is reported over "not found".
        if (error == EACCES) {
            first_error = EACCES;
        }
        if (colon == std::string::npos) {
            break;
        }
        start = colon + 1;
    }
    return {"", first_error};
}

plan::HostFacts gather_host_facts(const std::string& command) {
    plan::HostFacts facts;
    facts.cpus = gather_cpu_facts();
    facts.command = find_command(command);
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        facts.environment.emplace_back(*entry);
    }
    facts.pid = static_cast<int>(::getpid());
    return facts;
}

}  // namespace preforkctl::sys
