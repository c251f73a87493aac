#include "sys/host.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>

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

std::vector<plan::InheritedSocket> adopt_inherited_sockets(std::string& error) {
    std::vector<plan::InheritedSocket> sockets;
    const char* pid_text = std::getenv("LISTEN_PID");
    const char* count_text = std::getenv("LISTEN_FDS");
    if (pid_text == nullptr || count_text == nullptr || std::to_string(::getpid()) != pid_text) {
        return sockets;  // absent, or meant for another process (sd_listen_fds semantics)
    }
    const std::string names_text = std::getenv("LISTEN_FDNAMES") != nullptr ? std::getenv("LISTEN_FDNAMES") : "";
    char* end = nullptr;
    const long count = std::strtol(count_text, &end, 10);
    if (*end != '\0' || count < 1 || count > 64) {
        error = "LISTEN_FDS=" + std::string(count_text) + " from systemd is not a number from 1 to 64";
        return {};
    }
    std::vector<std::string> names;
    for (std::size_t start = 0;;) {
        const std::size_t colon = names_text.find(':', start);
        names.push_back(names_text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    for (int i = 0; i < count; ++i) {
        plan::InheritedSocket socket;
        socket.fd = 3 + i;
        socket.name = static_cast<std::size_t>(i) < names.size() && !names[static_cast<std::size_t>(i)].empty()
                          ? names[static_cast<std::size_t>(i)]
                          : "unknown";
        int accepting = 0;
        socklen_t length = sizeof accepting;
        if (::getsockopt(socket.fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) < 0 || accepting == 0) {
            error = "inherited fd " + std::to_string(socket.fd) + " (LISTEN_FDS) is not a listening socket";
            return {};
        }
        sockaddr_storage address{};
        socklen_t address_length = sizeof address;
        ::getsockname(socket.fd, reinterpret_cast<sockaddr*>(&address), &address_length);
        char host[INET6_ADDRSTRLEN] = "";
        if (address.ss_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
            ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            socket.host = host;
            socket.port = ntohs(in->sin_port);
            socket.address = socket.host + ":" + std::to_string(socket.port);
        } else if (address.ss_family == AF_INET6) {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
            ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            socket.host = host;
            socket.port = ntohs(in6->sin6_port);
            socket.address = "[" + socket.host + "]:" + std::to_string(socket.port);
        } else if (address.ss_family == AF_UNIX) {
            socket.address = "unix:" + std::string(reinterpret_cast<const sockaddr_un*>(&address)->sun_path);
        } else {
            socket.address = "fd " + std::to_string(socket.fd);
        }
        sockets.push_back(socket);
    }
    for (const char* name : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID"}) {
        ::unsetenv(name);
    }
    return sockets;
}

plan::UserLookup look_up_user(const std::string& spec) {
    plan::UserLookup result;
    const std::size_t colon = spec.find(':');
    const std::string user = spec.substr(0, colon);
    const std::string group = colon == std::string::npos ? "" : spec.substr(colon + 1);
    std::vector<char> buffer(64 * 1024);
    passwd pw{};
    passwd* found = nullptr;
    ::getpwnam_r(user.c_str(), &pw, buffer.data(), buffer.size(), &found);
    if (found == nullptr && !user.empty() && user.find_first_not_of("0123456789") == std::string::npos) {
        ::getpwuid_r(static_cast<uid_t>(std::stoul(user)), &pw, buffer.data(), buffer.size(), &found);
    }
    if (found == nullptr) {
        result.error = "unknown user '" + user + "'";
        return result;
    }
    result.uid = found->pw_uid;
    result.gid = found->pw_gid;
    const std::string user_name = found->pw_name;
    if (!group.empty()) {
        struct group gr {};
        struct group* group_found = nullptr;
        std::vector<char> group_buffer(64 * 1024);
        ::getgrnam_r(group.c_str(), &gr, group_buffer.data(), group_buffer.size(), &group_found);
        if (group_found == nullptr && group.find_first_not_of("0123456789") == std::string::npos) {
            ::getgrgid_r(static_cast<gid_t>(std::stoul(group)), &gr, group_buffer.data(), group_buffer.size(),
                         &group_found);
        }
        if (group_found == nullptr) {
            result.error = "unknown group '" + group + "'";
            return result;
        }
        result.gid = group_found->gr_gid;
    }
    int count = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    while (::getgrouplist(user_name.c_str(), result.gid, groups.data(), &count) < 0) {
        groups.resize(static_cast<std::size_t>(count));
    }
    for (int i = 0; i < count; ++i) result.groups.push_back(groups[static_cast<std::size_t>(i)]);
    result.found = true;
    return result;
}

namespace {

int read_tcp_migrate_req() {
    std::ifstream in("/proc/sys/net/ipv4/tcp_migrate_req");
    int value = -1;
    return (in >> value) ? value : -1;
}

}  // namespace

plan::HostFacts gather_host_facts(const std::string& command, const std::optional<std::string>& user) {
    plan::HostFacts facts;
    facts.inherited = adopt_inherited_sockets(facts.inherited_error);
    facts.cpus = gather_cpu_facts();
    facts.command = find_command(command);
    if (user) facts.user = look_up_user(*user);
    facts.tcp_migrate_req = read_tcp_migrate_req();
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        facts.environment.emplace_back(*entry);
    }
    facts.pid = static_cast<int>(::getpid());
    return facts;
}

}  // namespace preforkctl::sys
