#include "sys/control_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace preforkctl::sys {

namespace {

Error socket_error(const std::string& what, int err = errno) { return errno_error(what, err, ExitCode::socket); }

Result<sockaddr_un> unix_address(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(address.sun_path)) {
        return Error{"control socket path '" + path + "' is empty or longer than " +
                         std::to_string(sizeof(address.sun_path) - 1) + " bytes",
                     0, ExitCode::socket};
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    return address;
}

// The directory holds nothing but control sockets; another user able to write into it could swap ours.
Status prepare_directory(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return Ok{};
    const std::string directory = path.substr(0, slash);
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
        // A missing parent (say $XDG_RUNTIME_DIR/preforkctl under a parent that is gone) is the user's to make.
        return socket_error("cannot create the control socket directory " + directory);
    }
    struct stat info {};
    if (::stat(directory.c_str(), &info) != 0) return socket_error("cannot use " + directory);
    if (!S_ISDIR(info.st_mode)) {
        return Error{"cannot use " + directory + " for the control socket: not a directory", 0, ExitCode::socket};
    }
    if (info.st_uid != ::geteuid() && info.st_uid != 0) {
        return Error{"cannot use " + directory + " for the control socket: it belongs to uid " +
                         std::to_string(info.st_uid),
                     0, ExitCode::socket};
    }
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (info.st_mode & S_ISVTX) == 0) {
        return Error{"cannot use " + directory + " for the control socket: others may write to it (make it 0700)",
                     0, ExitCode::socket};
    }
    return Ok{};
}

// What is at `path` now: nothing, a socket someone listens on (its pid), or a socket nobody listens on.
struct Occupant {
    bool exists = false;
    bool live = false;
    pid_t pid = 0;
};

Result<Occupant> occupant_of(const std::string& path, const sockaddr_un& address) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) {
        if (errno == ENOENT) return Occupant{};
        return socket_error("cannot use control socket " + path);
    }
    if (!S_ISSOCK(info.st_mode)) {
        return Error{"cannot use control socket " + path + ": the file exists and is not a socket", 0,
                     ExitCode::socket};
    }
    const Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe.valid()) return socket_error("cannot create a unix socket");
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        if (errno == ECONNREFUSED) return Occupant{true, false, 0};
        return socket_error("cannot use control socket " + path);
    }
    const auto peer = peer_credentials(probe.get());
    return Occupant{true, true, peer ? peer->pid : 0};
}

}  // namespace

Result<ControlSocket> listen_control_socket(const std::string& path) {
    auto address = unix_address(path);
    if (!address) return address.error();
    if (auto directory = prepare_directory(path); !directory) return directory.error();
    auto occupant = occupant_of(path, *address);
    if (!occupant) return occupant.error();
    if (occupant->live) {
        return Error{"control socket " + path + " is in use by a running preforkctl" +
                         (occupant->pid > 0 ? " (pid " + std::to_string(occupant->pid) + ")" : "") +
                         "; give this one another --name or --control",
                     0, ExitCode::socket};
    }
    if (occupant->exists && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return socket_error("cannot replace the stale control socket " + path);
    }
    ControlSocket socket;
    socket.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!socket.fd.valid()) return socket_error("cannot create a unix socket");
    // Mode 0600 from the start: the umask decides the mode bind() gives the file.
    const mode_t previous = ::umask(0177);
    const int bound = ::bind(socket.fd.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address));
    const int bind_error = errno;
    ::umask(previous);
    if (bound != 0) return socket_error("cannot bind control socket " + path, bind_error);
    if (::listen(socket.fd.get(), 16) != 0) return socket_error("cannot listen on control socket " + path);
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0) {
        socket.device = info.st_dev;
        socket.inode = info.st_ino;
    }
    return socket;
}

void remove_control_socket(const std::string& path, const ControlSocket& socket) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) == 0 && info.st_dev == socket.device && info.st_ino == socket.inode) {
        ::unlink(path.c_str());
    }
}

Result<Fd> connect_control_socket(const std::string& path) {
    auto address = unix_address(path);
    if (!address) return address.error();
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return socket_error("cannot create a unix socket");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0) {
        return socket_error("cannot connect to " + path);
    }
    return fd;
}

std::optional<PeerCredentials> peer_credentials(int fd) {
    ucred credentials{};
    socklen_t size = sizeof(credentials);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) return std::nullopt;
    return PeerCredentials{credentials.pid, credentials.uid, credentials.gid};
}

}  // namespace preforkctl::sys
