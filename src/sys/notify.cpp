#include "sys/notify.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>

namespace preforkctl::sys {

namespace {

// sockaddr_un for "/path" or "@abstract" (a leading NUL instead of '@'), with its exact length: an abstract
// name is every byte of the length, so no trailing NUL may be counted.
bool make_address(const std::string& address, sockaddr_un& addr, socklen_t& length) {
    addr = sockaddr_un{};
    addr.sun_family = AF_UNIX;
    if (address.empty() || address.size() >= sizeof addr.sun_path) return false;
    if (address.front() != '/' && address.front() != '@') return false;
    std::memcpy(addr.sun_path, address.data(), address.size());
    if (address.front() == '@') addr.sun_path[0] = '\0';
    length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() +
                                    (address.front() == '/' ? 1 : 0));
    return true;
}

// The parent of `pid` from /proc/PID/stat (zombies included), or nullopt when it is gone. The name field may
// hold spaces and parentheses, so the fields are counted after its last ')'.
std::optional<pid_t> parent_of(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    Fd stat(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!stat.valid()) return std::nullopt;
    char text[1024];
    const ssize_t n = ::read(stat.get(), text, sizeof text - 1);
    if (n <= 0) return std::nullopt;
    const std::string_view line(text, static_cast<std::size_t>(n));
    const std::size_t name_end = line.rfind(')');
    if (name_end == std::string_view::npos || name_end + 4 >= line.size()) return std::nullopt;
    // ") S 1234 ...": state, then the parent's pid.
    long parent = 0;
    for (std::size_t i = name_end + 4; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) {
        parent = parent * 10 + (line[i] - '0');
    }
    return static_cast<pid_t>(parent);
}

std::optional<std::vector<pid_t>> ancestors_of(pid_t pid) {
    std::optional<pid_t> parent = parent_of(pid);
    if (!parent) return std::nullopt;
    std::vector<pid_t> ancestors;
    const pid_t self = ::getpid();
    while (parent && *parent > 0 && ancestors.size() < 64) {
        ancestors.push_back(*parent);
        if (*parent == 1 || *parent == self) break;
        parent = parent_of(*parent);
    }
    return ancestors;
}

}  // namespace

SocketFile& SocketFile::operator=(SocketFile&& other) noexcept {
    if (this != &other) {
        if (!path_.empty()) ::unlink(path_.c_str());
        path_ = std::exchange(other.path_, {});
    }
    return *this;
}

SocketFile::~SocketFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
}

NotifyDirectory::~NotifyDirectory() {
    if (!prepared_.empty()) ::rmdir(prepared_.c_str());  // fails while a socket file is left: then it stays
}

namespace {

// Removes the socket files of `directory` that nobody is bound to any more: left by a dead process that had
// this pid. A live one (another preforkctl with this pid, in another PID namespace on the same /run) stays.
void remove_stale_entries(const std::string& directory) {
    DIR* dir = ::opendir(directory.c_str());
    if (dir == nullptr) return;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name == "." || name == "..") continue;
        sockaddr_un addr{};
        socklen_t length = 0;
        Fd probe(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!probe.valid() || !make_address(directory + "/" + name, addr, length)) continue;
        if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), length) != 0 && errno == ECONNREFUSED) {
            ::unlinkat(::dirfd(dir), name.c_str(), 0);
        }
    }
    ::closedir(dir);
}

}  // namespace

Status NotifyDirectory::prepare(const std::string& directory) {
    const bool made = ::mkdir(directory.c_str(), 0711) == 0;
    if (!made && errno != EEXIST) return Error{std::string("cannot create it: ") + std::strerror(errno)};
    struct stat info {};
    if (::lstat(directory.c_str(), &info) != 0) return Error{std::string("cannot check it: ") + std::strerror(errno)};
    if (!S_ISDIR(info.st_mode)) return Error{"it is not a directory"};
    if (info.st_uid != ::geteuid()) return Error{"it belongs to uid " + std::to_string(info.st_uid)};
    if ((info.st_mode & 022) != 0) return Error{"others may write to it"};
    // The umask may have taken the others' search bit that a worker of another user needs.
    if ((info.st_mode & 07777) != 0711 && ::chmod(directory.c_str(), 0711) != 0) {
        return Error{std::string("cannot make it 0711: ") + std::strerror(errno)};
    }
    if (!made) remove_stale_entries(directory);
    prepared_ = directory;
    return Ok{};
}

namespace {

Result<Fd> make_notify_fd() {
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return Error{std::string("cannot create a notification socket: ") + std::strerror(errno)};
    const int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
        return Error{std::string("cannot ask for senders' credentials on a notification socket: ") +
                     std::strerror(errno)};
    }
    return fd;
}

// Binds `fd` to the next free name in `directory` and opens it to every user: the path, or why not. A name
// taken by a live socket (handed over by an upgrade, whose count started where this one does) is skipped,
// never removed.
Result<std::string> bind_file(int fd, const std::string& directory, unsigned& next_name) {
    for (int attempt = 0; attempt < 1024; ++attempt) {
        const std::string path = directory + "/" + std::to_string(next_name++);
        sockaddr_un addr{};
        socklen_t length = 0;
        if (!make_address(path, addr, length)) return Error{"the path " + path + " is too long for a unix socket"};
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), length) == 0) {
            if (::chmod(path.c_str(), 0666) != 0) {
                const int error = errno;
                ::unlink(path.c_str());
                return Error{"cannot open " + path + " to workers: " + std::strerror(error)};
            }
            return path;
        }
        if (errno != EADDRINUSE) return Error{"cannot bind " + path + ": " + std::strerror(errno)};
    }
    return Error{"no free name in " + directory};
}

}  // namespace

Result<std::string> NotifyDirectory::bind_in(int fd, const std::string& directory) {
    // Made again if it went: another preforkctl with this pid (PID namespaces sharing a /run) that found it
    // empty at its exit removed it.
    if (directory == prepared_ && ::access(directory.c_str(), F_OK) != 0) prepared_.clear();
    if (directory != prepared_) {
        if (auto prepared = prepare(directory); !prepared) return prepared.error();
    }
    return bind_file(fd, directory, next_name_);
}

Result<NotifySocket> NotifyDirectory::bind(const std::string& directory) {
    auto fd = make_notify_fd();
    if (!fd) return fd.error();
    std::string fallback;
    if (!directory.empty() && directory != refused_) {
        auto path = bind_in(fd->get(), directory);
        if (path) return NotifySocket{std::move(*fd), *path, SocketFile(*path), {}};
        refused_ = directory;
        fallback = "cannot use " + directory + " for the workers' notification sockets: " + path.error().message;
    }
    static std::atomic<unsigned> counter{0};
    const std::string address =
        "@preforkctl/" + std::to_string(::getpid()) + "/notify/" + std::to_string(counter.fetch_add(1));
    sockaddr_un addr{};
    socklen_t length = 0;
    make_address(address, addr, length);
    if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
        return Error{"cannot bind notification socket " + address + ": " + std::strerror(errno)};
    }
    return NotifySocket{std::move(*fd), address, SocketFile{}, std::move(fallback)};
}

void NotifyDirectory::adopt(const std::string& socket_file) {
    const std::size_t slash = socket_file.rfind('/');
    if (prepared_.empty() && slash != std::string::npos && slash > 0) prepared_ = socket_file.substr(0, slash);
}

std::string socket_file_of(int fd) {
    sockaddr_un addr{};
    socklen_t length = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0 || addr.sun_family != AF_UNIX) return {};
    const std::size_t offset = offsetof(sockaddr_un, sun_path);
    if (length <= offset || addr.sun_path[0] == '\0') return {};
    return std::string(addr.sun_path, ::strnlen(addr.sun_path, length - offset));
}

bool send_notify(const std::string& address, std::string_view message) {
    return send_notify_with_fds(address, message, {});
}

bool send_notify_with_fds(const std::string& address, std::string_view message, const std::vector<int>& fds) {
    constexpr std::size_t kMaxFds = 64;
    sockaddr_un addr{};
    socklen_t length = 0;
    if (fds.size() > kMaxFds || !make_address(address, addr, length)) return false;
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return false;
    iovec data{const_cast<char*>(message.data()), message.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
    msghdr header{};
    header.msg_name = &addr;
    header.msg_namelen = length;
    header.msg_iov = &data;
    header.msg_iovlen = 1;
    if (!fds.empty()) {
        header.msg_control = control;
        header.msg_controllen = static_cast<decltype(header.msg_controllen)>(CMSG_SPACE(fds.size() * sizeof(int)));
        cmsghdr* part = CMSG_FIRSTHDR(&header);
        part->cmsg_level = SOL_SOCKET;
        part->cmsg_type = SCM_RIGHTS;
        part->cmsg_len = static_cast<decltype(part->cmsg_len)>(CMSG_LEN(fds.size() * sizeof(int)));
        std::memcpy(CMSG_DATA(part), fds.data(), fds.size() * sizeof(int));
    }
    return ::sendmsg(fd.get(), &header, MSG_NOSIGNAL) == static_cast<ssize_t>(message.size());
}

std::vector<NotifyMessage> receive_notify_messages(int fd) {
    std::vector<NotifyMessage> messages;
    char buffer[4096];
    // Room for the credentials and for a few descriptors, which are closed: more would be closed by the kernel.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(16 * sizeof(int))];
    for (;;) {
        iovec data{buffer, sizeof buffer};
        msghdr header{};
        header.msg_iov = &data;
        header.msg_iovlen = 1;
        header.msg_control = control;
        header.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        NotifySender sender;
        std::vector<Fd> passed_fds;
        for (cmsghdr* part = CMSG_FIRSTHDR(&header); part != nullptr; part = CMSG_NXTHDR(&header, part)) {
            if (part->cmsg_level != SOL_SOCKET) continue;
            if (part->cmsg_type == SCM_CREDENTIALS && part->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
                ucred credentials{};
                std::memcpy(&credentials, CMSG_DATA(part), sizeof credentials);
                sender.pid = credentials.pid;
                sender.uid = credentials.uid;
            } else if (part->cmsg_type == SCM_RIGHTS) {
                const std::size_t count = (part->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < count; ++i) {
                    int passed = -1;
                    std::memcpy(&passed, CMSG_DATA(part) + i * sizeof(int), sizeof passed);
                    passed_fds.emplace_back(passed);
                }
            }
        }
        if (sender.pid > 0) sender.ancestors = ancestors_of(sender.pid);
        // Only now: a barrier's pipe closing tells the sender its messages were read, and it then exits
        // (and may be reaped) at once, after which it could no longer be placed in the worker's tree.
        passed_fds.clear();
        messages.push_back(NotifyMessage{std::string(buffer, static_cast<std::size_t>(n)), std::move(sender)});
    }
    return messages;
}

bool notify_message_has(std::string_view message, std::string_view assignment) {
    while (!message.empty()) {
        const std::size_t end = message.find('\n');
        if (message.substr(0, end) == assignment) return true;
        if (end == std::string_view::npos) break;
        message.remove_prefix(end + 1);
    }
    return false;
}

std::optional<std::uint64_t> notify_number(std::string_view message, std::string_view name) {
    while (!message.empty()) {
        const std::size_t end = message.find('\n');
        const std::string_view line = message.substr(0, end);
        if (line.size() > name.size() && line.substr(0, name.size()) == name && line[name.size()] == '=') {
            const std::string_view digits = line.substr(name.size() + 1);
            std::uint64_t value = 0;
            const auto [rest, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
            if (error != std::errc{} || rest != digits.data() + digits.size()) return std::nullopt;
            return value;
        }
        if (end == std::string_view::npos) break;
        message.remove_prefix(end + 1);
    }
    return std::nullopt;
}

}  // namespace preforkctl::sys
