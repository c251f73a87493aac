#include "config/toml_settings.hpp"

#include <functional>
#include <map>
#include <sstream>
#include <toml++/toml.h>

namespace preforkctl::config {

Settings merge(Settings base, const Settings& overrides) {
    auto take = [](auto& into, const auto& from) {
        if (from) {
            into = from;
        }
    };
    take(base.workers, overrides.workers);
    take(base.cpus, overrides.cpus);
    take(base.affinity, overrides.affinity);
    if (!overrides.listen.empty()) {
        base.listen = overrides.listen;
    }
    take(base.socket_mode, overrides.socket_mode);
    take(base.steer, overrides.steer);
    take(base.preload, overrides.preload);
    take(base.fd_store, overrides.fd_store);
    take(base.fd_env, overrides.fd_env);
    take(base.user, overrides.user);
    take(base.restart, overrides.restart);
    take(base.success_exit, overrides.success_exit);
    take(base.restart_prevent, overrides.restart_prevent);
    take(base.restart_force, overrides.restart_force);
    take(base.max_restarts, overrides.max_restarts);
    take(base.restart_window, overrides.restart_window);
    take(base.backoff, overrides.backoff);
    take(base.min_uptime, overrides.min_uptime);
    take(base.on_threshold, overrides.on_threshold);
    take(base.stop_signal, overrides.stop_signal);
    take(base.stop_timeout, overrides.stop_timeout);
    take(base.signal_scope, overrides.signal_scope);
    if (!overrides.rewrite_signal.empty()) {
        base.rewrite_signal = overrides.rewrite_signal;
    }
    take(base.scale_up_after, overrides.scale_up_after);
    take(base.scale_down_after, overrides.scale_down_after);
    take(base.max_rss, overrides.max_rss);
    take(base.max_lifetime, overrides.max_lifetime);
    take(base.lifetime_jitter, overrides.lifetime_jitter);
    take(base.watchdog, overrides.watchdog);
    take(base.ready, overrides.ready);
    take(base.ready_timeout, overrides.ready_timeout);
    take(base.log_format, overrides.log_format);
    take(base.timestamps, overrides.timestamps);
    take(base.color, overrides.color);
    take(base.max_line, overrides.max_line);
    take(base.log_overflow, overrides.log_overflow);
    take(base.name, overrides.name);
    take(base.chdir, overrides.chdir);
    take(base.control, overrides.control);
    take(base.metrics, overrides.metrics);
    base.env.insert(base.env.end(), overrides.env.begin(), overrides.env.end());
    base.env_file.insert(base.env_file.end(), overrides.env_file.begin(), overrides.env_file.end());
    take(base.command, overrides.command);
    base.print_plan = base.print_plan || overrides.print_plan;
    base.verbosity += overrides.verbosity;
    if (overrides.config_file) {
        base.config_file = overrides.config_file;
    }
    return base;
}

namespace {

std::string where(const std::string& path, const toml::source_region& source) {
    std::ostringstream out;
    out << path << ':' << source.begin.line << ':' << source.begin.column;
    return out.str();
}

Error config_error(const std::string& at, const std::string& what) {
    return Error{at + ": " + what, 0, ExitCode::config};
}

const char* type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::array: return "an array";
        case toml::node_type::table: return "a table";
        case toml::node_type::date:
        case toml::node_type::time:
        case toml::node_type::date_time: return "a date/time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

// Reads one config key into Settings. Each reader knows the types its key accepts.
class Reader {
public:
    Reader(std::string path, Settings& settings) : path_(std::move(path)), settings_(settings) {}

    Status read_key(const std::string& key, const toml::source_region& key_source, const toml::node& node);

private:
    Status wrong_type(const std::string& key, const toml::node& node, const char* wanted) {
        return config_error(where(path_, node.source()),
                            "'" + key + "' must be " + wanted + ", not " + type_name(node));
    }

    Status text(const std::string& key, const toml::node& node, std::optional<Setting<std::string>>& into) {
        if (!node.is_string()) {
            return wrong_type(key, node, "a string");
        }
        into = Setting<std::string>{node.as_string()->get(), where(path_, node.source())};
        return Ok{};
    }

    // Durations, sizes and worker counts may be written as a bare integer (seconds / bytes / count) or a string.
    Status text_or_integer(const std::string& key, const toml::node& node,
                           std::optional<Setting<std::string>>& into, const char* integer_suffix) {
        if (node.is_integer()) {
            into = Setting<std::string>{std::to_string(node.as_integer()->get()) + integer_suffix,
                                        where(path_, node.source())};
            return Ok{};
        }
        return text(key, node, into);
    }

    Status integer(const std::string& key, const toml::node& node, std::optional<Setting<std::int64_t>>& into) {
        if (!node.is_integer()) {
            return wrong_type(key, node, "an integer");
        }
        into = Setting<std::int64_t>{node.as_integer()->get(), where(path_, node.source())};
        return Ok{};
    }

    // verbose = true (like one -v) or a count (like -vv); quiet = true (like -q). They add up as on the command line.
    Status verbosity(const std::string& key, const toml::node& node, int step) {
        if (node.is_boolean()) {
            settings_.verbosity += node.as_boolean()->get() ? step : 0;
            return Ok{};
        }
        if (step > 0 && node.is_integer()) {
            const std::int64_t count = node.as_integer()->get();
            if (count < 0 || count > 3) {
                return config_error(where(path_, node.source()), "'" + key + "' must be from 0 to 3, got " +
                                                                      std::to_string(count));
            }
            settings_.verbosity += static_cast<int>(count);
            return Ok{};
        }
        return wrong_type(key, node, step > 0 ? "a boolean or a count from 0 to 3" : "a boolean");
    }

    Status boolean(const std::string& key, const toml::node& node, std::optional<Setting<bool>>& into) {
        if (!node.is_boolean()) {
            return wrong_type(key, node, "true or false");
        }
        into = Setting<bool>{node.as_boolean()->get(), where(path_, node.source())};
        return Ok{};
    }

    Status exit_list(const std::string& key, const toml::node& node, std::optional<Setting<std::string>>& into);
    Status strings(const std::string& key, const toml::node& node, const char* expected,
                   std::vector<Setting<std::string>>& into);
    Status listen(const std::string& key, const toml::node& node);
    Status listen_table(const toml::table& table);
    Status env(const std::string& key, const toml::node& node);
    Status command(const std::string& key, const toml::node& node);

    std::string path_;
    Settings& settings_;
};

// An exit-status list: "143,TERM", 3, or [143, "TERM"]; kept as the comma-separated text the option takes.
Status Reader::exit_list(const std::string& key, const toml::node& node, std::optional<Setting<std::string>>& into) {
    auto item_text = [](const toml::node& item) -> std::optional<std::string> {
        if (item.is_integer()) return std::to_string(item.as_integer()->get());
        if (item.is_string()) return item.as_string()->get();
        return std::nullopt;
    };
    if (!node.is_array()) {
        auto text = item_text(node);
        if (!text) return wrong_type(key, node, "a string, an integer or an array of them");
        into = Setting<std::string>{*text, where(path_, node.source())};
        return Ok{};
    }
    std::string joined;
    for (const toml::node& item : *node.as_array()) {
        auto text = item_text(item);
        if (!text) return wrong_type(key + " element", item, "an integer or a string");
        joined += (joined.empty() ? "" : ",") + *text;
    }
    into = Setting<std::string>{joined, where(path_, node.source())};
    return Ok{};
}

// One string, or (when `expected` allows it) an array of strings, each appended to `into` with its origin.
Status Reader::strings(const std::string& key, const toml::node& node, const char* expected,
                       std::vector<Setting<std::string>>& into) {
    if (node.is_string()) {
        into.push_back({node.as_string()->get(), where(path_, node.source())});
        return Ok{};
    }
    if (!node.is_array()) {
        return wrong_type(key, node, expected);
    }
    for (const toml::node& item : *node.as_array()) {
        if (!item.is_string()) {
            return wrong_type(key + " element", item, "a string");
        }
        into.push_back({item.as_string()->get(), where(path_, item.source())});
    }
    return Ok{};
}

Status Reader::listen_table(const toml::table& table) {
    std::string text;
    std::string origin = where(path_, table.source());
    std::string options;
    for (auto&& [raw_key, value] : table) {
        const std::string key(raw_key.str());
        const std::string at = where(path_, value.source());
        if (key == "address") {
            if (!value.is_string()) {
                return wrong_type("listen.address", value, "a string");
            }
            text = value.as_string()->get();
            origin = at;
        } else if (key == "name" || key == "mode") {
            if (!value.is_string()) {
                return wrong_type("listen." + key, value, "a string");
            }
            options += "," + key + "=" + value.as_string()->get();
        } else if (key == "backlog") {
            if (!value.is_integer()) {
                return wrong_type("listen.backlog", value, "an integer");
            }
            options += ",backlog=" + std::to_string(value.as_integer()->get());
        } else {
            return config_error(where(path_, raw_key.source()), "unknown key 'listen." + key + "'");
        }
    }
    if (text.empty()) {
        return config_error(origin, "listener table needs 'address'");
    }
    settings_.listen.push_back({text + options, origin});
    return Ok{};
}

Status Reader::listen(const std::string& key, const toml::node& node) {
    if (node.is_string()) {
        settings_.listen.push_back({node.as_string()->get(), where(path_, node.source())});
        return Ok{};
    }
    if (node.is_table()) {
        return listen_table(*node.as_table());
    }
    if (!node.is_array()) {
        return wrong_type(key, node, "a string, an array or a table");
    }
    for (const toml::node& item : *node.as_array()) {
        if (item.is_string()) {
            settings_.listen.push_back({item.as_string()->get(), where(path_, item.source())});
        } else if (item.is_table()) {
            if (auto status = listen_table(*item.as_table()); !status) {
                return status;
            }
        } else {
            return wrong_type(key + " element", item, "a string or a table");
        }
    }
    return Ok{};
}

Status Reader::env(const std::string& key, const toml::node& node) {
    if (node.is_table()) {
        for (auto&& [name, value] : *node.as_table()) {
            if (!value.is_string()) {
                return wrong_type("env." + std::string(name.str()), value, "a string");
            }
            settings_.env.push_back({std::string(name.str()) + "=" + value.as_string()->get(),
                                     where(path_, value.source())});
        }
        return Ok{};
    }
    if (node.is_string()) {
        return wrong_type(key, node, "a table or an array of \"K=V\" strings");
    }
    return strings(key, node, "a table or an array of \"K=V\" strings", settings_.env);
}

Status Reader::command(const std::string& key, const toml::node& node) {
    if (!node.is_array()) {
        return wrong_type(key, node, "an array of strings");
    }
    Setting<std::vector<std::string>> command{{}, where(path_, node.source())};
    for (const toml::node& item : *node.as_array()) {
        if (!item.is_string()) {
            return wrong_type(key + " element", item, "a string");
        }
        command.value.push_back(item.as_string()->get());
    }
    if (command.value.empty()) {
        return config_error(command.origin, "'command' must not be empty");
    }
    settings_.command = std::move(command);
    return Ok{};
}

Status Reader::read_key(const std::string& key, const toml::source_region& key_source, const toml::node& node) {
    Settings& s = settings_;
    if (key == "workers") return text_or_integer(key, node, s.workers, "");
    if (key == "cpus") return text_or_integer(key, node, s.cpus, "");
    if (key == "affinity") return boolean(key, node, s.affinity);
    if (key == "listen") return listen(key, node);
    if (key == "socket-mode") return text(key, node, s.socket_mode);
    if (key == "steer") return text(key, node, s.steer);
    if (key == "preload") return boolean(key, node, s.preload);
    if (key == "fd-store") return boolean(key, node, s.fd_store);
    if (key == "fd-env") return text(key, node, s.fd_env);
    if (key == "user") return text(key, node, s.user);
    if (key == "restart") return text(key, node, s.restart);
    if (key == "success-exit") return exit_list(key, node, s.success_exit);
    if (key == "restart-prevent") return exit_list(key, node, s.restart_prevent);
    if (key == "restart-force") return exit_list(key, node, s.restart_force);
    if (key == "max-restarts") return integer(key, node, s.max_restarts);
    if (key == "restart-window") return text_or_integer(key, node, s.restart_window, "s");
    if (key == "backoff") return text(key, node, s.backoff);
    if (key == "min-uptime") return text_or_integer(key, node, s.min_uptime, "s");
    if (key == "on-threshold") return text(key, node, s.on_threshold);
    if (key == "stop-signal") return text_or_integer(key, node, s.stop_signal, "");
    if (key == "stop-timeout") return text_or_integer(key, node, s.stop_timeout, "s");
    if (key == "signal-scope") return text(key, node, s.signal_scope);
    if (key == "rewrite-signal") {
        return strings(key, node, "a string or an array of \"FROM:TO\" strings", s.rewrite_signal);
    }
    if (key == "scale-up-after") return text_or_integer(key, node, s.scale_up_after, "s");
    if (key == "scale-down-after") return text_or_integer(key, node, s.scale_down_after, "s");
    if (key == "max-rss") return text_or_integer(key, node, s.max_rss, "");
    if (key == "max-lifetime") return text_or_integer(key, node, s.max_lifetime, "s");
    if (key == "lifetime-jitter") return text_or_integer(key, node, s.lifetime_jitter, "s");
    if (key == "watchdog") return text_or_integer(key, node, s.watchdog, "s");
    if (key == "ready") return text(key, node, s.ready);
    if (key == "ready-timeout") return text_or_integer(key, node, s.ready_timeout, "s");
    if (key == "log-format") return text(key, node, s.log_format);
    if (key == "timestamps") return boolean(key, node, s.timestamps);
    if (key == "color") return text(key, node, s.color);
    if (key == "max-line") return integer(key, node, s.max_line);
    if (key == "log-overflow") return text(key, node, s.log_overflow);
    if (key == "name") return text(key, node, s.name);
    if (key == "chdir") return text(key, node, s.chdir);
    if (key == "control") return text(key, node, s.control);
    if (key == "metrics") return text(key, node, s.metrics);
    if (key == "env") return env(key, node);
    if (key == "env-file") return strings(key, node, "a string or an array of strings", s.env_file);
    if (key == "verbose") return verbosity(key, node, +1);
    if (key == "quiet") return verbosity(key, node, -1);
    if (key == "print-plan") {
        if (!node.is_boolean()) return wrong_type(key, node, "a boolean");
        s.print_plan = node.as_boolean()->get();
        return Ok{};
    }
    if (key == "command") return command(key, node);
    return config_error(where(path_, key_source), "unknown key '" + key + "'");
}

// A syntax error toml++ threw, as an Error "NAME:LINE:COL: what".
Error syntax_error(const std::string& name, const toml::parse_error& error) {
    return config_error(where(name, error.source()), std::string(error.description()));
}

// Reads the keys of a parsed file into Settings; `name` is the file name errors and origins carry.
Result<Settings> read_settings(const toml::table& table, const std::string& name) {
    Settings settings;
    Reader reader(name, settings);
    for (auto&& [raw_key, node] : table) {
        std::string key(raw_key.str());
        for (char& c : key) {
            if (c == '_') {
                c = '-';
            }
        }
        if (Status status = reader.read_key(key, raw_key.source(), node); !status) {
            return status.error();
        }
    }
    return settings;
}

}  // namespace

// toml::parse_file is toml::parse of the file's bytes once the file is open; it stays here so that a file it
// cannot open or size is reported as before.
Result<Settings> load_toml_settings(const std::string& path) {
    toml::table table;
    try {
        table = toml::parse_file(path);
    } catch (const toml::parse_error& error) {
        if (error.source().begin.line == 0) {
            // toml++ reports a file it cannot open at 0:0.
            return Error{"cannot read config file " + path + ": " + std::string(error.description()), 0,
                         ExitCode::config};
        }
        return syntax_error(path, error);
    }
    auto settings = read_settings(table, path);
    if (settings) {
        settings->config_file = path;
    }
    return settings;
}

Result<Settings> load_toml_settings_text(std::string_view text, const std::string& name) {
    toml::table table;
    try {
        table = toml::parse(text, name);
    } catch (const toml::parse_error& error) {
        return syntax_error(name, error);
    }
    return read_settings(table, name);
}

}  // namespace preforkctl::config
