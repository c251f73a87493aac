#pragma once
// Settings: what the user wrote, on the command line or in the config file, with where each value came
// from. Values stay as written (strings for lists, durations, enums); make_plan validates them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace preforkctl::config {

/// One value and where it was written: "--workers" or "prefork.toml:3:11".
template <class T>
struct Setting {
    T value{};
    std::string origin;
};

/// Everything a long option (or config key) can set. Empty optional = not given.
struct Settings {
    std::optional<Setting<std::string>> workers;       // "auto", a number or "MIN..MAX" (MAX a number or "auto")
    std::optional<Setting<std::string>> cpus;          // CPU list
    std::optional<Setting<bool>> affinity;
    std::vector<Setting<std::string>> listen;          // "ADDR[,opt=val...]"
    std::optional<Setting<std::string>> socket_mode;
    std::optional<Setting<std::string>> steer;         // "none" or "cpu"
    std::optional<Setting<bool>> preload;              // inject libpreforkctl-preload.so into the workers
    std::optional<Setting<bool>> fd_store;             // keep the listening sockets in systemd's fd store
    std::optional<Setting<std::string>> fd_env;        // "systemd,einhorn,server-starter"
    std::optional<Setting<std::string>> user;          // "USER[:GROUP]"
    std::optional<Setting<std::string>> restart;
    std::optional<Setting<std::string>> success_exit;     // "143,TERM": exit codes and signal names
    std::optional<Setting<std::string>> restart_prevent;  // same syntax
    std::optional<Setting<std::string>> restart_force;    // same syntax
    std::optional<Setting<std::int64_t>> max_restarts;
    std::optional<Setting<std::string>> restart_window;
    std::optional<Setting<std::string>> backoff;       // "MIN..MAX"
    std::optional<Setting<std::string>> min_uptime;
    std::optional<Setting<std::string>> on_threshold;
    std::optional<Setting<std::string>> stop_signal;
    std::optional<Setting<std::string>> stop_timeout;
    std::optional<Setting<std::string>> signal_scope;     // "group" or "worker"
    std::vector<Setting<std::string>> rewrite_signal;     // "FROM:TO[,FROM:TO...]"
    std::optional<Setting<std::string>> scale_up_after;    // durations; only with workers = MIN..MAX
    std::optional<Setting<std::string>> scale_down_after;
    std::optional<Setting<std::string>> max_rss;           // a size: "512M"
    std::optional<Setting<std::string>> max_lifetime;
    std::optional<Setting<std::string>> lifetime_jitter;
    std::optional<Setting<std::string>> watchdog;
    std::optional<Setting<std::string>> ready;         // "none", "notify" or "delay:DUR"
    std::optional<Setting<std::string>> ready_timeout;
    std::optional<Setting<std::string>> log_format;
    std::optional<Setting<bool>> timestamps;
    std::optional<Setting<std::string>> color;
    std::optional<Setting<std::int64_t>> max_line;
    std::optional<Setting<std::string>> log_overflow;  // "block" or "drop"
    std::optional<Setting<std::string>> name;          // prefix of output lines; default: command basename
    std::optional<Setting<std::string>> chdir;
    std::optional<Setting<std::string>> control;       // control socket: PATH, "auto" or "none"
    std::optional<Setting<std::string>> metrics;       // Prometheus endpoint HOST:PORT
    std::vector<Setting<std::string>> env;             // "K=V"
    std::vector<Setting<std::string>> env_file;        // paths of KEY=VALUE files, read at plan time
    std::optional<Setting<std::vector<std::string>>> command;
    bool print_plan = false;
    int verbosity = 0;                                 // -v: +1, -q: -1
    std::optional<std::string> config_file;
};

/// Values of `overrides` replace those of `base`; `env` and `env_file` entries accumulate (later wins per key
/// at plan time); `listen`, `rewrite_signal` and `command` from `overrides` replace the base lists when given.
Settings merge(Settings base, const Settings& overrides);

}  // namespace preforkctl::config
