#include "plan/control_path.hpp"
#include "plan/planners.hpp"
#include "plan/setting_values.hpp"

namespace preforkctl::plan {

namespace {

std::string xdg_runtime_dir(const std::vector<std::string>& environment) {
    for (const std::string& entry : environment) {
        if (entry.starts_with("XDG_RUNTIME_DIR=")) return entry.substr(16);
    }
    return {};
}

}  // namespace

std::string control_directory(unsigned euid, const std::string& xdg_runtime_dir) {
    // Only an absolute XDG_RUNTIME_DIR counts, as the XDG base directory specification says.
    if (!xdg_runtime_dir.empty() && xdg_runtime_dir.front() == '/') return xdg_runtime_dir + "/preforkctl";
    if (euid == 0) return "/run/preforkctl";
    return "/tmp/preforkctl-" + std::to_string(euid);
}

std::string control_socket_path(const std::string& name, unsigned euid, const std::string& xdg_runtime_dir) {
    std::string file = name;
    for (char& c : file) {
        if (c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
    }
    if (file == "." || file == "..") file = "_";
    return control_directory(euid, xdg_runtime_dir) + "/" + file + ".sock";
}

std::string notify_directory(unsigned euid, const std::string& xdg_runtime_dir, int pid, bool workers_as_other_user) {
    std::string base = "/tmp";
    if (euid == 0) {
        base = "/run";
    } else if (!workers_as_other_user && !xdg_runtime_dir.empty() && xdg_runtime_dir.front() == '/') {
        base = xdg_runtime_dir;
    }
    return base + "/preforkctl-notify." + std::to_string(pid);
}

Status plan_control(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    if (plan.ready.mode == ReadyMode::notify || plan.watchdog) {
        const bool other_user = plan.user && plan.user->uid != facts.euid;
        plan.notify_directory =
            notify_directory(facts.euid, xdg_runtime_dir(facts.environment), facts.pid, other_user);
    }
    const std::string choice = settings.control ? settings.control->value : "auto";
    if (choice == "none") {
        plan.control.socket.reset();
    } else if (choice == "auto") {
        plan.control.socket = control_socket_path(plan.log.name, facts.euid, xdg_runtime_dir(facts.environment));
        // Two preforkctl of the same command, neither named: the second one runs without a control socket
        // rather than refusing to start (an explicit --name or --control makes a clash an error).
        plan.control.socket_required = settings.name.has_value();
    } else if (choice.empty()) {
        return setting_error(*settings.control, "control", "must be a socket path, auto or none");
    } else {
        // preforkctl moves to / before it listens: a relative path means the directory it was started in, as
        // every other path does.
        plan.control.socket = choice.front() == '/' || facts.working_directory.empty()
                                  ? choice
                                  : facts.working_directory + "/" + choice;
        plan.control.socket_required = true;
    }
    if (settings.metrics) {
        auto address = parse_listen(settings.metrics->value);
        if (!address || address->kind != ListenSpec::Kind::tcp || settings.metrics->value.find(',') != std::string::npos) {
            return setting_error(*settings.metrics, "metrics",
                                 "'" + settings.metrics->value + "' is not HOST:PORT, :PORT or [V6]:PORT");
        }
        plan.control.metrics = *address;
    }
    return Ok{};
}

}  // namespace preforkctl::plan
