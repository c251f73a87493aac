#include "sys/host.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "plan/elf_header.hpp"
#include "plan/user.hpp"
#include "sys/fd.hpp"
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
    const plan::UserSpec parts = plan::split_user_spec(spec);
    std::vector<char> buffer(64 * 1024);
    passwd pw{};
    passwd* found = nullptr;
    auto uid = plan::parse_id(parts.user);
    if (uid && *uid) {
        ::getpwuid_r(static_cast<uid_t>(**uid), &pw, buffer.data(), buffer.size(), &found);
    } else if (uid && !parts.user.empty()) {
        ::getpwnam_r(parts.user.c_str(), &pw, buffer.data(), buffer.size(), &found);
    }
    if (found != nullptr) {
        plan::PasswdEntry entry{found->pw_name, found->pw_uid, found->pw_gid, {}};
        int count = 64;
        std::vector<gid_t> groups(static_cast<std::size_t>(count));
        while (::getgrouplist(entry.name.c_str(), entry.gid, groups.data(), &count) < 0) {
            groups.resize(static_cast<std::size_t>(count));
        }
        entry.groups.assign(groups.begin(), groups.begin() + count);
        result.user = std::move(entry);
    }
    if (parts.group && !parts.group->empty()) {
        struct group gr {};
        struct group* group_found = nullptr;
        auto gid = plan::parse_id(*parts.group);
        if (gid && *gid) {
            ::getgrgid_r(static_cast<gid_t>(**gid), &gr, buffer.data(), buffer.size(), &group_found);
        } else if (gid) {
            ::getgrnam_r(parts.group->c_str(), &gr, buffer.data(), buffer.size(), &group_found);
        }
        if (group_found != nullptr) result.group = group_found->gr_gid;
    }
    return result;
}

plan::FdLimits raise_fd_limit() {
    plan::FdLimits limits;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) < 0) return limits;
    limits.soft = limit.rlim_cur;
    limits.hard = limit.rlim_max;
    limits.raised = limit.rlim_cur;
    if (limit.rlim_cur < limit.rlim_max) {
        const rlimit raised{limit.rlim_max, limit.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limits.raised = limit.rlim_max;
    }
    return limits;
}

bool can_switch_user() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
    if (::syscall(SYS_capget, &header, data.data()) < 0) return ::geteuid() == 0;
    const auto effective = [&](unsigned capability) { return (data[capability / 32].effective >> (capability % 32)) & 1U; };
    return effective(CAP_SETUID) != 0 && effective(CAP_SETGID) != 0;
}

int check_directory(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

plan::EnvFileText read_env_file(const std::string& path) {
    plan::EnvFileText file;
    const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) return {"", errno};
    std::array<char, 64 * 1024> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return {"", errno};  // EISDIR for a directory
        if (n == 0) return file;
        file.text.append(buffer.data(), static_cast<std::size_t>(n));
        if (file.text.size() > plan::kMaxEnvFileBytes) return {"", EFBIG};
    }
}

namespace {

constexpr const char* kPreloadName = "libpreforkctl-preload.so";

std::string directory_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace

plan::PreloadLookup find_preload_library() {
    plan::PreloadLookup lookup;
    std::array<char, 4096> exe{};
    const ssize_t length = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
    if (length > 0) {
        const std::string bin = directory_of(std::string(exe.data(), static_cast<std::size_t>(length)));
        lookup.searched.push_back(bin + "/" + kPreloadName);
        lookup.searched.push_back(directory_of(bin) + "/lib/preforkctl/" + kPreloadName);
    }
    lookup.searched.emplace_back(PREFORKCTL_PRELOAD_INSTALL_PATH);
    for (const std::string& candidate : lookup.searched) {
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
            lookup.library = candidate;
            break;
        }
    }
    return lookup;
}

plan::ExecutableFacts inspect_executable(const std::string& path) {
    plan::ExecutableFacts facts;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) facts.set_id = (st.st_mode & (S_ISUID | S_ISGID)) != 0;
    std::ifstream in(path, std::ios::binary);
    std::string head(64 * 1024, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    facts.static_elf = plan::classify_elf(head) == plan::ElfLinking::static_;
    return facts;
}

namespace {

int read_tcp_migrate_req() {
    std::ifstream in("/proc/sys/net/ipv4/tcp_migrate_req");
    int value = -1;
    return (in >> value) ? value : -1;
}

}  // namespace

plan::HostFacts gather_host_facts(const config::Settings& settings, const plan::FdLimits& fd_limits) {
    plan::HostFacts facts;
    facts.inherited = adopt_inherited_sockets(facts.inherited_error);
    facts.cpus = gather_cpu_facts();
    facts.command = find_command(settings.command && !settings.command->value.empty() ? settings.command->value.front()
                                                                                      : std::string());
    if (settings.user) facts.user = look_up_user(settings.user->value);
    facts.euid = ::geteuid();
    facts.egid = ::getegid();
    facts.can_switch_user = can_switch_user();
    if (settings.chdir && !settings.chdir->value.empty()) facts.chdir_error = check_directory(settings.chdir->value);
    for (const auto& env_file : settings.env_file) facts.env_files.push_back(read_env_file(env_file.value));
    facts.fd_limits = fd_limits;
    facts.tcp_migrate_req = read_tcp_migrate_req();
    if (settings.preload && settings.preload->value) {
        facts.preload = find_preload_library();
        if (!facts.command.path.empty()) facts.executable = inspect_executable(facts.command.path);
    }
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        facts.environment.emplace_back(*entry);
    }
    facts.pid = static_cast<int>(::getpid());
    char directory[4096];
    if (::getcwd(directory, sizeof directory) != nullptr) facts.working_directory = directory;
    return facts;
}

}  // namespace preforkctl::sys
