#include "app/handover.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "net/listeners.hpp"
#include "plan/make_plan.hpp"
#include "sys/host.hpp"
#include "sys/reexec.hpp"
#include "upgrade/state.hpp"

namespace preforkctl::app {

namespace {

// A listener as the planner sees a socket it is given: host and port from the address the state recorded.
plan::InheritedSocket as_inherited(const upgrade::ListenerState& listener) {
    plan::InheritedSocket socket;
    socket.fd = listener.fd;
    socket.name = listener.name;
    socket.address = listener.address;
    socket.port = listener.port;
    if (listener.address.starts_with("[")) {
        socket.host = listener.address.substr(1, listener.address.find(']') - 1);
    } else if (!listener.address.starts_with("unix:")) {
        socket.host = listener.address.substr(0, listener.address.rfind(':'));
    }
    return socket;
}

// The plan the command line and the config file make now, with the sockets of the state as the ones
// preforkctl holds. In the directory preforkctl started in, as at start and at a reload.
Result<plan::Plan> plan_for(const upgrade::State& state, int argc, char** argv, plan::FdLimits fd_limits) {
    if (state.workdir_fd >= 0 && ::fchdir(state.workdir_fd) != 0) {
        return Error{std::string("cannot enter the directory preforkctl started in: ") + std::strerror(errno)};
    }
    std::optional<int> exit_now;
    auto settings = load_settings(argc, argv, exit_now);
    if (exit_now) return Error{"the command line does not start preforkctl"};
    if (!settings) return settings.error();
    set_verbosity(settings->verbosity);
    set_log_format(*settings);
    if (state.fd_soft_limit > 0) fd_limits.soft = state.fd_soft_limit;  // as at the first start
    plan::HostFacts facts = sys::gather_host_facts(*settings, fd_limits);
    facts.inherited.clear();
    facts.handed_over = true;
    for (const upgrade::ListenerState& listener : state.listeners) {
        if (listener.slot < 0) facts.inherited.push_back(as_inherited(listener));
    }
    auto plan = plan::make_plan(*settings, facts);
    if (state.workdir_fd >= 0 && ::chdir("/") != 0) {
        // still in the start directory: harmless, workers start there anyway
    }
    if (!plan) return plan.error();
    const bool per_slot = std::any_of(state.listeners.begin(), state.listeners.end(),
                                      [](const auto& listener) { return listener.slot >= 0; });
    if (per_slot != (plan->socket_mode == plan::SocketMode::reuseport)) {
        return Error{"--socket-mode differs from the running one (the config file changed?): restart to change it"};
    }
    return plan;
}

// The reuseport sockets of every slot, as the previous image held them.
Result<net::ListenerSet> per_slot_listeners(const upgrade::State& state, const plan::Plan& plan) {
    net::ListenerSet set;
    for (const plan::ListenSpec& spec : plan.listeners) set.ports.push_back(spec.port);
    for (const upgrade::ListenerState& listener : state.listeners) {
        if (listener.slot < 0) continue;
        const auto slot = static_cast<std::size_t>(listener.slot);
        if (set.per_slot.size() <= slot) set.per_slot.resize(slot + 1);
        const std::size_t index = set.per_slot[slot].size();
        if (index >= plan.listeners.size()) return Error{"slot " + std::to_string(slot) + " holds more sockets than --listen gives"};
        ::fcntl(listener.fd, F_SETFD, FD_CLOEXEC);
        set.per_slot[slot].push_back(net::Listener{plan.listeners[index], sys::Fd(listener.fd), listener.port});
        set.ports[index] = listener.port;
    }
    return set;
}

int check(const upgrade::State& state, int argc, char** argv, plan::FdLimits fd_limits) {
    auto plan = plan_for(state, argc, argv, fd_limits);
    if (!plan) {
        std::fprintf(stderr, "preforkctl: error: %s\n", plan.error().message.c_str());
        return to_int(ExitCode::config);
    }
    std::printf("%s (from %s to %s)\n", std::string(upgrade::kCheckAccepted).c_str(), state.from_version.c_str(),
                PREFORKCTL_VERSION);
    return 0;
}

int restore(upgrade::State state, int argc, char** argv, plan::FdLimits fd_limits) {
    auto plan = plan_for(state, argc, argv, fd_limits);
    if (!plan) {
        // Only a config file changed between the check and the exec gets here: nothing can be taken over.
        spdlog::error("upgrade: cannot take over: {}", plan.error().message);
        return to_int(ExitCode::internal);
    }
    Result<net::ListenerSet> listeners = plan->socket_mode == plan::SocketMode::reuseport
                                             ? per_slot_listeners(state, *plan)
                                             : net::acquire_listeners(*plan);
    if (!listeners) {
        spdlog::error("upgrade: cannot take over the listening sockets: {}", listeners.error().message);
        return to_int(ExitCode::internal);
    }
    ::fcntl(state.workdir_fd, F_SETFD, FD_CLOEXEC);
    const int workdir = state.workdir_fd;
    supervise::Invocation invocation = invocation_of(argc, argv, fd_limits);
    if (state.fd_soft_limit > 0) invocation.fd_soft_limit = state.fd_soft_limit;
    return supervise::supervise(*plan, *listeners, workdir, reread_from(argc, argv, fd_limits, workdir),
                                std::move(invocation), std::move(state));
}

}  // namespace

HandoverArgument take_handover_argument(int& argc, char**& argv) {
    if (argc < 2) return {};
    const std::string_view first = argv[1];
    for (const auto& [prefix, mode] : {std::pair{std::string_view("--upgrade-check="), HandoverMode::check},
                                       std::pair{std::string_view("--upgrade-state="), HandoverMode::restore}}) {
        if (!first.starts_with(prefix)) continue;
        HandoverArgument handover{mode, -1};
        try {
            handover.fd = std::stoi(std::string(first.substr(prefix.size())));
        } catch (const std::exception&) {
            return {};
        }
        argv[1] = argv[0];
        ++argv;
        --argc;
        return handover;
    }
    return {};
}

int take_over(const HandoverArgument& handover, int argc, char** argv, plan::FdLimits fd_limits) {
    auto text = sys::read_whole_fd(handover.fd);
    ::close(handover.fd);
    if (!text) {
        std::fprintf(stderr, "preforkctl: error: %s\n", text.error().message.c_str());
        return to_int(ExitCode::internal);
    }
    auto state = upgrade::decode(*text);
    if (!state) {
        std::fprintf(stderr, "preforkctl: error: %s\n", state.error().message.c_str());
        return to_int(ExitCode::config);
    }
    try {
        if (handover.mode == HandoverMode::check) return check(*state, argc, argv, fd_limits);
        return restore(std::move(*state), argc, argv, fd_limits);
    } catch (const std::exception& error) {
        spdlog::error("unexpected failure: {}", error.what());
        return to_int(ExitCode::internal);
    }
}

}  // namespace preforkctl::app
