#include "sys/accept_queue.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstddef>

namespace preforkctl::sys {

std::optional<AcceptQueue> read_accept_queue(int fd) {
    tcp_info info{};
    socklen_t length = sizeof info;
    // A unix or UDP socket refuses IPPROTO_TCP options (EOPNOTSUPP), a non-socket fails with ENOTSOCK.
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return std::nullopt;
    // An older kernel may fill less of the struct; the two counters must be inside what it filled.
    if (length < offsetof(tcp_info, tcpi_sacked) + sizeof info.tcpi_sacked) return std::nullopt;
    // Only in LISTEN state do these two fields mean the accept queue (tcp_get_info(): sk_ack_backlog and
    // sk_max_ack_backlog); on a connection they count unacknowledged and SACKed segments.
    if (info.tcpi_state != TCP_LISTEN) return std::nullopt;
    return AcceptQueue{info.tcpi_unacked, info.tcpi_sacked};
}

}  // namespace preforkctl::sys
