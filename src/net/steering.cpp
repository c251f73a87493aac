#include "net/steering.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace preforkctl::net {

// The kernel keeps a reuseport group as an array (net/core/sock_reuseport.c): a TCP socket is appended at
// socks[num_socks] when it starts listening (reuseport_add_sock), and when one leaves the group the last
// socket moves into the freed index (socks[i] = socks[num_socks - 1]). A classic program's return value is
// an index into that array; an index at or beyond num_socks makes the kernel fall back to its hash
// (run_bpf_filter). So the index of a socket is fixed by the order of listen() calls, removing the last
// joiner moves nobody, and the modulus must follow the group's size.

std::vector<sock_filter> cpu_steering_program(unsigned group_size) {
    const unsigned modulus = group_size == 0 ? 1 : group_size;  // the kernel refuses a modulus of 0
    return {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<unsigned>(SKF_AD_OFF + SKF_AD_CPU)),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, modulus),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
}

std::vector<int> steering_join_order(const std::vector<int>& slot_cpus) {
    const std::size_t count = slot_cpus.size();
    std::vector<int> at_index(count, -1);
    std::vector<int> left_over;
    for (std::size_t slot = 0; slot < count; ++slot) {
        const int cpu = slot_cpus[slot];
        if (cpu >= 0 && at_index[static_cast<std::size_t>(cpu) % count] < 0) {
            at_index[static_cast<std::size_t>(cpu) % count] = static_cast<int>(slot);
        } else {
            left_over.push_back(static_cast<int>(slot));
        }
    }
    std::size_t next = 0;
    for (int& slot : at_index) {
        if (slot < 0) slot = left_over[next++];
    }
    return at_index;
}

Status attach_cpu_steering(const ListenerSet& listeners) {
    const std::vector<Listener>* first = nullptr;
    unsigned group_size = 0;
    for (const std::vector<Listener>& sockets : listeners.per_slot) {
        if (sockets.empty()) continue;
        if (first == nullptr) first = &sockets;
        ++group_size;
    }
    if (first == nullptr) return Ok{};
    std::vector<sock_filter> program = cpu_steering_program(group_size);
    const sock_fprog fprog{static_cast<unsigned short>(program.size()), program.data()};
    // Any socket of a group sets the program of the whole group.
    for (const Listener& listener : *first) {
        if (::setsockopt(listener.fd.get(), SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof fprog) < 0) {
            return errno_error("--steer cpu: cannot attach the steering program to " + listener.address(), errno,
                               ExitCode::socket);
        }
    }
    return Ok{};
}

}  // namespace preforkctl::net
