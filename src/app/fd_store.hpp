#pragma once
// --fd-store (SPEC §14): preforkctl hands its shared listening sockets to systemd, which keeps them open
// while the service restarts and passes them back by name (plan/fd_store.hpp decides which come back).

#include "net/listeners.hpp"
#include "plan/plan.hpp"

namespace preforkctl::app {

/// Closes the stored sockets no --listen took back and has systemd forget them (FDSTOREREMOVE=1), then, with
/// plan.fd_store, sends each shared listener with FDSTORE=1 and its name. Logs what it did; a message systemd
/// cannot take (no FileDescriptorStoreMax=) is logged and otherwise harmless.
void keep_listeners_in_fd_store(const plan::Plan& plan, const net::ListenerSet& listeners);

}  // namespace preforkctl::app
