#include <algorithm>

#include "plan/fd_store.hpp"
#include "plan/planners.hpp"
#include "plan/setting_values.hpp"

namespace preforkctl::plan {

namespace {

Result<std::vector<FdDialect>> parse_dialects(const std::string& text) {
    std::vector<FdDialect> dialects;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = text.find(',', start);
        const std::string name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        FdDialect dialect{};
        if (name == "systemd") dialect = FdDialect::systemd;
        else if (name == "einhorn") dialect = FdDialect::einhorn;
        else if (name == "server-starter") dialect = FdDialect::server_starter;
        else return Error{"unknown dialect '" + name + "' (systemd, einhorn, server-starter)"};
        if (std::find(dialects.begin(), dialects.end(), dialect) == dialects.end()) dialects.push_back(dialect);
        if (comma == std::string::npos) return dialects;
        start = comma + 1;
    }
}

// Listeners from --listen, or adopted from systemd, checked against the socket mode.
Status plan_listeners(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    if (!facts.inherited_error.empty()) {
        return Error{facts.inherited_error, 0, ExitCode::config};
    }
    if (!facts.inherited.empty() && settings.listen.empty()) {
        if (plan.socket_mode != SocketMode::shared) {
            return setting_error(*settings.socket_mode, "socket-mode",
                                 "sockets inherited from systemd can only be shared");
        }
        plan.adopted = true;
        for (const InheritedSocket& socket : facts.inherited) {
            ListenSpec spec;
            spec.kind = ListenSpec::Kind::inherited;
            spec.inherited_fd = socket.fd;
            spec.name = socket.name;
            spec.text = socket.address;
            spec.host = socket.host;
            spec.port = static_cast<std::uint16_t>(socket.port);
            plan.listeners.push_back(spec);
        }
        return Ok{};
    }
    for (const auto& listen : settings.listen) {
        plan.listen_given.push_back(listen.value);
        auto spec = parse_listen(listen.value);
        if (!spec) return setting_error(listen, "listen", spec.error().message);
        if (plan.socket_mode != SocketMode::shared && spec->kind == ListenSpec::Kind::unix_path) {
            return setting_error(listen, "listen", "unix sockets can only be shared (SO_REUSEPORT is for TCP)");
        }
        if (plan.socket_mode == SocketMode::child && spec->port == 0) {
            return setting_error(listen, "listen", "--socket-mode child needs a fixed port: each worker binds it");
        }
        plan.listeners.push_back(*spec);
    }
    if (plan.socket_mode == SocketMode::child && plan.listeners.size() != 1) {
        return setting_error(*settings.socket_mode, "socket-mode",
                             "child mode needs exactly one --listen address (passed as HOST and PORT)");
    }
    if (facts.handed_over) {
        // An upgrade (ctl upgrade): each --listen takes the socket the previous image held for it. One it held
        // that no --listen asks for means the file changed since it was last read: a reload applies that.
        if (plan.socket_mode != SocketMode::shared) return Ok{};
        adopt_stored_sockets(facts, plan);
        if (!plan.stale_stored.empty()) {
            return setting_error(settings.listen.front(), "listen",
                                 "no --listen matches " + plan.stale_stored.front().address +
                                     ", which preforkctl listens on now (the config file changed?): ctl reload "
                                     "first, then upgrade");
        }
        for (const ListenSpec& spec : plan.listeners) {
            if (spec.kind != ListenSpec::Kind::inherited) {
                return setting_error(settings.listen.front(), "listen",
                                     spec.text + " is not listened on now (the config file changed?): ctl reload "
                                                 "first, then upgrade");
            }
        }
        plan.stored_adopted = false;
        return Ok{};
    }
    if (!facts.inherited.empty()) {
        // Sockets systemd kept in its fd store (--fd-store) for this --listen come back by name; without
        // the store, sockets from systemd beside --listen are a socket unit the user forgot.
        if (plan.socket_mode != SocketMode::shared || !wants_fd_store(settings, facts)) {
            return setting_error(settings.listen.front(), "listen",
                                 "preforkctl was given " + std::to_string(facts.inherited.size()) +
                                     " socket(s) by systemd (LISTEN_FDS); drop --listen or the socket unit");
        }
        adopt_stored_sockets(facts, plan);
    }
    return Ok{};
}

// --steer cpu: the kernel picks a socket of a reuseport group by index, so there must be one group per
// address with one socket per slot (reuseport, TCP), and a slot must sit on one CPU (--affinity).
Status plan_steering(const config::Settings& settings, Plan& plan) {
    auto steer = parse_choice<SteerMode>(settings.steer, "steer", SteerMode::none,
                                         {{"none", SteerMode::none}, {"cpu", SteerMode::cpu}});
    if (!steer) return steer.error();
    plan.steer = *steer;
    if (plan.steer == SteerMode::none) return Ok{};
    if (plan.socket_mode != SocketMode::reuseport) {
        return setting_error(*settings.steer, "steer",
                             "cpu needs --socket-mode reuseport: it picks one of the slots' own sockets");
    }
    if (!plan.affinity) {
        return setting_error(*settings.steer, "steer", "cpu needs --affinity: each slot's worker must sit on one CPU");
    }
    for (const ListenSpec& listener : plan.listeners) {
        if (listener.kind != ListenSpec::Kind::tcp) {
            return setting_error(*settings.steer, "steer", "cpu steers TCP listeners only, not " + listener.text);
        }
    }
    return Ok{};
}

}  // namespace

Status plan_sockets(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    auto mode = parse_choice<SocketMode>(settings.socket_mode, "socket-mode", SocketMode::shared,
                                         {{"shared", SocketMode::shared},
                                          {"reuseport", SocketMode::reuseport},
                                          {"child", SocketMode::child}});
    if (!mode) return mode.error();
    plan.socket_mode = *mode;
    plan.tcp_migrate_req = facts.tcp_migrate_req;
    if (auto listeners = plan_listeners(settings, facts, plan); !listeners) return listeners.error();
    auto dialects = parse_setting<std::vector<FdDialect>>(settings.fd_env, "fd-env", plan.fd_env, parse_dialects);
    if (!dialects) return dialects.error();
    plan.fd_env = *dialects;
    if (settings.fd_env && plan.socket_mode == SocketMode::child) {
        return setting_error(*settings.fd_env, "fd-env",
                             "workers bind HOST:PORT themselves in --socket-mode child, so there are no "
                             "descriptors to describe; drop --fd-env or use shared or reuseport");
    }
    return plan_steering(settings, plan);
}

}  // namespace preforkctl::plan
