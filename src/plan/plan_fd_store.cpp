// --fd-store (SPEC §14): systemd keeps preforkctl's listening sockets while it restarts, and passes them back
// with their names; preforkctl adopts each one that a --listen still asks for. Pure.

#include <arpa/inet.h>

#include <cstring>

#include "plan/fd_store.hpp"
#include "plan/planners.hpp"
#include "plan/setting_values.hpp"

namespace preforkctl::plan {

namespace {

// FDSTORE=N, set by systemd 254 and later when the unit has FileDescriptorStoreMax=N.
long store_size(const std::vector<std::string>& environment) {
    for (const std::string& entry : environment) {
        if (entry.starts_with("FDSTORE=")) return std::strtol(entry.c_str() + 8, nullptr, 10);
    }
    return 0;
}

// True when the numeric hosts `a` and `b` are the same address ("::1" and "0:0::1" are).
bool same_host(const std::string& a, const std::string& b, bool ipv6) {
    unsigned char left[16] = {};
    unsigned char right[16] = {};
    const int family = ipv6 ? AF_INET6 : AF_INET;
    if (::inet_pton(family, a.c_str(), left) != 1 || ::inet_pton(family, b.c_str(), right) != 1) return a == b;
    return std::memcmp(left, right, ipv6 ? 16 : 4) == 0;
}

}  // namespace

bool wants_fd_store(const config::Settings& settings, const HostFacts& facts) {
    if (settings.fd_store) return settings.fd_store->value;
    return store_size(facts.environment) > 0;
}

bool stored_socket_matches(const ListenSpec& wanted, const InheritedSocket& socket) {
    if (socket.name != wanted.name) return false;
    if (wanted.kind == ListenSpec::Kind::unix_path) return socket.address == "unix:" + wanted.path;
    if (wanted.kind != ListenSpec::Kind::tcp || socket.host.empty()) return false;
    const bool socket_ipv6 = socket.address.starts_with("[");
    if (socket_ipv6 != wanted.ipv6 || !same_host(socket.host, wanted.host, wanted.ipv6)) return false;
    // Port 0 asked the kernel for any port: the one it gave before the restart is kept.
    return wanted.port == 0 || socket.port == wanted.port;
}

void adopt_stored_sockets(const HostFacts& facts, Plan& plan) {
    std::vector<bool> taken(facts.inherited.size(), false);
    for (ListenSpec& spec : plan.listeners) {
        for (std::size_t i = 0; i < facts.inherited.size(); ++i) {
            if (taken[i] || !stored_socket_matches(spec, facts.inherited[i])) continue;
            taken[i] = true;
            spec.kind = ListenSpec::Kind::inherited;
            spec.inherited_fd = facts.inherited[i].fd;
            spec.port = static_cast<std::uint16_t>(facts.inherited[i].port);
            spec.text = facts.inherited[i].address;  // port 0 asked for: the port it has
            plan.stored_adopted = true;
            break;
        }
    }
    for (std::size_t i = 0; i < facts.inherited.size(); ++i) {
        if (taken[i]) continue;
        // The configuration changed between two starts: the stored socket goes, and systemd forgets it.
        plan.stale_stored.push_back(facts.inherited[i]);
    }
}

Status plan_fd_store(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    if (!wants_fd_store(settings, facts)) return Ok{};
    const bool asked = settings.fd_store.has_value();
    if (!plan.notify_socket) {
        if (asked) {
            plan.warnings.push_back(setting_warning(*settings.fd_store, "fd-store",
                                                    "NOTIFY_SOCKET is not set (preforkctl was not started by "
                                                    "systemd), so there is no fd store to keep the sockets in"));
        }
        return Ok{};
    }
    if (plan.adopted) return Ok{};  // a socket unit holds them already
    if (plan.socket_mode != SocketMode::shared) {
        if (!asked) return Ok{};
        return setting_error(*settings.fd_store, "fd-store",
                             "keeps shared sockets only: in --socket-mode reuseport and child there is no one "
                             "socket per address to keep");
    }
    plan.fd_store = !plan.listeners.empty();
    return Ok{};
}

std::string fd_store_message(const ListenSpec& listener) {
    return "FDSTORE=1\nFDNAME=" + listener.name;
}

std::string fd_store_remove_message(const std::string& name) {
    return "FDSTOREREMOVE=1\nFDNAME=" + name;
}

}  // namespace preforkctl::plan
