#pragma once
// The listeners preforkctl hands to a worker with --preload (PREFORKCTL_PRELOAD_LISTENERS), and the rule that
// decides which of them serves a bind(). Pure: no state, no allocation, no system calls, no C++ runtime.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>

namespace preforkctl::preload {

/// The most listeners the library takes from the environment; later ones are ignored.
inline constexpr int kMaxListeners = 64;

/// Listener::fd in child mode: nothing is inherited; a matching bind() gets SO_REUSEPORT instead.
inline constexpr int kNoFd = -1;

/// One listener as preforkctl describes it.
struct Listener {
    int fd = kNoFd;                     // the inherited listening socket, or kNoFd
    int family = AF_UNSPEC;             // AF_INET, AF_INET6 or AF_UNIX
    int type = 0;                       // SOCK_STREAM or SOCK_DGRAM
    unsigned char host[16] = {};        // network byte order (the first 4 bytes for AF_INET)
    unsigned short port = 0;            // host byte order
    char path[sizeof(sockaddr_un::sun_path)] = {};  // AF_UNIX, NUL-terminated
};

/// Parses the value of PREFORKCTL_PRELOAD_LISTENERS into `out`; returns the number of listeners, or -1 when
/// the text is malformed or holds more than `capacity` (then none may be used). The format, written by
/// preforkctl's make_plan: entries joined by ';', each "FD,FAMILY,TYPE,LENGTH,ADDRESS" where FD is a decimal
/// fd or '-' (child mode), FAMILY is inet, inet6 or unix, TYPE is stream or dgram, and ADDRESS is exactly
/// LENGTH bytes: "HOST:PORT" (inet), "[HOST]:PORT" (inet6) or a unix socket path (any bytes but NUL).
int parse_listeners(const char* text, Listener* out, int capacity);

/// The index of the listener that serves bind(`address`, `length`) on a socket of type `type`, or -1. It
/// needs the same family, type and port (never port 0), and the same host, or a wildcard on either side
/// (a wildcard listener covers any host; a wildcard request takes a listener of any host); for unix sockets
/// the same path. A listener with the same host wins over a wildcard one.
int match_listener(const Listener* listeners, int count, int type, const sockaddr* address, socklen_t length);

}  // namespace preforkctl::preload
