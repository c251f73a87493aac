#pragma once
// CPU-local connection steering (--steer cpu, §13): a classic BPF program attached to each reuseport group
// (SO_ATTACH_REUSEPORT_CBPF) returns the index of the socket a new connection goes to.

#include <linux/filter.h>

#include <vector>

#include "net/listeners.hpp"
#include "sys/result.hpp"

namespace preforkctl::net {

/// The program that sends a connection received on CPU c to the socket at index c % group_size of its
/// reuseport group: load the CPU number, reduce it modulo the group size, return it. Pure.
std::vector<sock_filter> cpu_steering_program(unsigned group_size);

/// The order in which the slots' sockets must join a reuseport group (slot numbers, first joiner first) so
/// that the slot pinned to CPU c sits at index c % N (N = the number of slots) wherever two slots do not
/// compete for one index; slots that lose, or have no CPU (-1), fill the free indices in slot order.
/// `slot_cpus[i]` is the CPU of slot i. Pure.
std::vector<int> steering_join_order(const std::vector<int>& slot_cpus);

/// Attaches cpu_steering_program(group size) to the reuseport group of each address of `listeners`; the
/// group size is the number of slots holding sockets. Call it again whenever a slot's sockets join or leave.
/// A kernel that refuses gives "--steer cpu: cannot attach ... to ADDR: <errno text>" with exit code socket.
Status attach_cpu_steering(const ListenerSet& listeners);

}  // namespace preforkctl::net
