// --preload (SPEC §13): where the library is, what the workers' environment tells it, and the warnings for
// commands the loader will not preload.
#include <algorithm>
#include <string>

#include "plan/planners.hpp"
#include "plan/setting_values.hpp"

namespace preforkctl::plan {

namespace {

std::string joined(const std::vector<std::string>& items, const std::string& separator) {
    std::string out;
    for (const std::string& item : items) {
        out += (out.empty() ? "" : separator) + item;
    }
    return out;
}

// "FD,FAMILY,TYPE,LENGTH,ADDRESS" for one listener (the format src/preload/listeners.hpp parses), or "" for
// a listener the library cannot describe (a systemd socket that is neither TCP nor a unix path).
std::string describe_listener(const std::string& fd, const ListenSpec& listener, const std::string& address) {
    std::string family;
    std::string text;
    if (listener.kind == ListenSpec::Kind::unix_path) {
        family = "unix";
        text = listener.path;
    } else if (listener.kind == ListenSpec::Kind::inherited && listener.text.starts_with("unix:")) {
        family = "unix";
        text = listener.text.substr(5);
    } else if (!listener.host.empty()) {
        const bool v6 = listener.ipv6 || listener.host.find(':') != std::string::npos;
        family = v6 ? "inet6" : "inet";
        text = v6 ? "[" + listener.host + "]:" : listener.host + ":";
        text += address.substr(address.rfind(':') + 1);
    } else {
        return "";
    }
    return fd + "," + family + ",stream," + std::to_string(text.size()) + "," + text;
}

}  // namespace

Status plan_preload(const config::Settings& settings, const HostFacts& facts, Plan& plan) {
    if (!settings.preload || !settings.preload->value) return Ok{};
    if (!facts.preload || facts.preload->library.empty()) {
        const std::vector<std::string> searched = facts.preload ? facts.preload->searched : std::vector<std::string>{};
        return setting_error(*settings.preload, "preload",
                             std::string("libpreforkctl-preload.so is not installed (looked at ") +
                                 joined(searched, ", ") + ")");
    }
    plan.preload_library = facts.preload->library;
    if (facts.executable.static_elf) {
        plan.warnings.push_back(setting_warning(*settings.preload, "preload",
                                                plan.executable +
                                                    " is a static program: the loader never reads LD_PRELOAD for it, "
                                                    "so its own bind() will not get preforkctl's sockets"));
    }
    if (facts.executable.set_id) {
        plan.warnings.push_back(setting_warning(*settings.preload, "preload",
                                                plan.executable +
                                                    " is setuid or setgid: the loader ignores LD_PRELOAD for it"));
    }
    if (plan.listeners.empty()) {
        plan.warnings.push_back(setting_warning(*settings.preload, "preload",
                                                "there is no listener to hand out (no --listen)"));
    }
    return Ok{};
}

std::string preload_listeners(const Plan& plan, const SlotContext& context) {
    std::string out;
    for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
        const ListenSpec& listener = plan.listeners[i];
        const std::string address = i < context.addresses.size() ? context.addresses[i]
                                                                  : format_address(listener, listener.port);
        const std::string fd = plan.socket_mode == SocketMode::child ? std::string("-") : std::to_string(3 + i);
        const std::string entry = describe_listener(fd, listener, address);
        if (entry.empty()) continue;
        out += (out.empty() ? "" : ";") + entry;
    }
    return out;
}

std::string with_preload(const std::string& ld_preload, const std::string& library) {
    // The loader splits LD_PRELOAD at colons and spaces; a list that already names the library keeps it once.
    std::size_t start = 0;
    while (start <= ld_preload.size()) {
        const std::size_t end = std::min(ld_preload.find_first_of(": ", start), ld_preload.size());
        if (ld_preload.compare(start, end - start, library) == 0 && end - start == library.size()) return ld_preload;
        start = end + 1;
    }
    return ld_preload.empty() ? library : ld_preload + ":" + library;
}

}  // namespace preforkctl::plan
