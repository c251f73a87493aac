#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstdint>

#include "plan/planners.hpp"
#include "plan/setting_values.hpp"

namespace preforkctl::plan {

namespace {

struct Backoff {
    Millis min;
    Millis max;
};

Result<Backoff> parse_backoff(const std::string& text) {
    const std::size_t dots = text.find("..");
    if (dots == std::string::npos) {
        return Error{"expected MIN..MAX, e.g. 100ms..10s, got '" + text + "'"};
    }
    auto min = parse_duration(text.substr(0, dots));
    auto max = parse_duration(text.substr(dots + 2));
    if (!min) return min.error();
    if (!max) return max.error();
    if (min->count() == 0) {
        return Error{"MIN must be above 0 (a restart loop needs a delay), got '" + text + "'"};
    }
    if (*max < *min) {
        return Error{"MAX is below MIN in '" + text + "'"};
    }
    return Backoff{*min, *max};
}

// "none", "notify" or "delay:DUR".
Result<ReadySpec> parse_ready(const std::string& text) {
    ReadySpec spec;
    if (text == "none") return spec;
    if (text == "notify") {
        spec.mode = ReadyMode::notify;
        return spec;
    }
    if (text.starts_with("delay:")) {
        auto delay = parse_duration(text.substr(6));
        if (!delay) return delay.error();
        spec.mode = ReadyMode::delay;
        spec.delay = *delay;
        return spec;
    }
    return Error{"must be none, notify or delay:DUR (e.g. delay:2s), got '" + text + "'"};
}

}  // namespace

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const std::size_t first = item.find_first_not_of(" \t");
        const std::size_t last = item.find_last_not_of(" \t");
        items.push_back(first == std::string::npos ? "" : item.substr(first, last - first + 1));
        if (comma == std::string::npos) return items;
        start = comma + 1;
    }
}

namespace {

// "143,TERM,3": numbers are exit codes 0..255, names (or SIGnames) are deaths by that signal.
Result<ExitMatch> parse_exit_match(const std::string& text) {
    ExitMatch match;
    for (const std::string& item : split_list(text)) {
        if (item.empty()) {
            return Error{"expected exit codes 0-255 and signal names separated by commas (e.g. 143,TERM), got '" +
                         text + "'"};
        }
        if (std::isdigit(static_cast<unsigned char>(item.front())) != 0) {
            int code = -1;
            auto [rest, ec] = std::from_chars(item.data(), item.data() + item.size(), code);
            if (ec != std::errc{} || rest != item.data() + item.size() || code < 0 || code > 255) {
                return Error{"exit codes are 0 to 255, got '" + item + "' (a signal is written by name, e.g. TERM)"};
            }
            match.codes.set(static_cast<std::size_t>(code));
            continue;
        }
        auto signal = parse_signal(item);
        if (!signal || *signal >= static_cast<int>(match.signals.size())) {
            return Error{"'" + item + "' is neither an exit code (0-255) nor a signal name"};
        }
        match.signals.set(static_cast<std::size_t>(*signal));
    }
    return match;
}

// The first status that both sets list, as the user would write it ("3", "SIGTERM"), or "".
std::string first_overlap(const ExitMatch& a, const ExitMatch& b) {
    for (std::size_t code = 0; code < a.codes.size(); ++code) {
        if (a.codes.test(code) && b.codes.test(code)) return "exit code " + std::to_string(code);
    }
    for (std::size_t sig = 0; sig < a.signals.size(); ++sig) {
        if (a.signals.test(sig) && b.signals.test(sig)) return signal_name(static_cast<int>(sig));
    }
    return "";
}

// "USR1:USR2" or "WINCH:0" (0 drops the signal); several may be joined with commas.
Result<std::vector<std::pair<int, int>>> parse_rewrites(const std::string& text) {
    std::vector<std::pair<int, int>> rewrites;
    for (const std::string& item : split_list(text)) {
        const std::size_t colon = item.find(':');
        if (colon == std::string::npos) {
            return Error{"expected FROM:TO (e.g. USR1:HUP, or WINCH:0 to drop it), got '" + item + "'"};
        }
        auto from = parse_signal(item.substr(0, colon));
        if (!from) return from.error();
        if (!is_forwarded_signal(*from)) {
            std::string why = signal_name(*from) + " is not forwarded to the workers, so it cannot be rewritten";
            if (*from == SIGTERM || *from == SIGINT) why += " (use --stop-signal to choose what a stop sends)";
            std::string forwarded;
            for (const int signal : kForwardedSignals) {
                forwarded += (forwarded.empty() ? "" : ", ") + signal_name(signal).substr(3);  // without "SIG"
            }
            return Error{why + "; only the forwarded ones can (" + forwarded + ")"};
        }
        const std::string to_text = item.substr(colon + 1);
        int to = 0;
        if (to_text != "0") {
            auto parsed = parse_signal(to_text);
            if (!parsed) return parsed.error();
            to = *parsed;
        }
        rewrites.emplace_back(*from, to);
    }
    return rewrites;
}


// A signal whose default action ends a process: one that only stops, continues or is ignored by default
// would leave a worker that does not handle it running until --stop-timeout and SIGKILL.
Result<int> parse_stop_signal(const std::string& text) {
    auto signal = parse_signal(text);
    if (!signal) return signal;
    switch (*signal) {
        case SIGSTOP:
        case SIGTSTP:
        case SIGTTIN:
        case SIGTTOU:
        case SIGCONT:
        case SIGCHLD:
        case SIGURG:
        case SIGWINCH:
            return Error{signal_name(*signal) + " does not end a process by default (it stops, continues or is "
                         "ignored); use a signal that does, e.g. TERM, INT, QUIT or KILL"};
        default: return signal;
    }
}

}  // namespace

bool is_forwarded_signal(int signal) {
    return std::find(kForwardedSignals.begin(), kForwardedSignals.end(), signal) != kForwardedSignals.end();
}

Status plan_restart_and_stop(const config::Settings& settings, const HostFacts& /*facts*/, Plan& plan) {
    auto when = parse_choice<RestartWhen>(settings.restart, "restart", RestartWhen::always,
                                          {{"always", RestartWhen::always},
                                           {"on-failure", RestartWhen::on_failure},
                                           {"never", RestartWhen::never}});
    if (!when) return when.error();
    plan.restart.when = *when;
    auto success = parse_setting<ExitMatch>(settings.success_exit, "success-exit", {}, parse_exit_match);
    if (!success) return success.error();
    plan.restart.success = *success;
    auto prevent = parse_setting<ExitMatch>(settings.restart_prevent, "restart-prevent", {}, parse_exit_match);
    if (!prevent) return prevent.error();
    plan.restart.prevent = *prevent;
    auto force = parse_setting<ExitMatch>(settings.restart_force, "restart-force", {}, parse_exit_match);
    if (!force) return force.error();
    plan.restart.force = *force;
    if (const std::string both = first_overlap(*prevent, *force); !both.empty()) {
        return setting_error(*settings.restart_force, "restart-force",
                             both + " is also listed in --restart-prevent; a status can be in only one of them");
    }
    if (settings.max_restarts) {
        if (settings.max_restarts->value < 0 || settings.max_restarts->value > 1'000'000) {
            return setting_error(*settings.max_restarts, "max-restarts", "must be a number from 0 to 1000000");
        }
        plan.restart.max_restarts = static_cast<int>(settings.max_restarts->value);
    }
    auto window = parse_duration_setting(settings.restart_window, "restart-window", plan.restart.window);
    if (!window) return window.error();
    if (window->count() == 0) {
        return setting_error(*settings.restart_window, "restart-window",
                             "must be above 0 (the threshold counts restarts within it; --max-restarts sets how many)");
    }
    plan.restart.window = *window;
    auto backoff = parse_setting<Backoff>(settings.backoff, "backoff",
                                          Backoff{plan.restart.backoff_min, plan.restart.backoff_max}, parse_backoff);
    if (!backoff) return backoff.error();
    plan.restart.backoff_min = backoff->min;
    plan.restart.backoff_max = backoff->max;
    auto uptime = parse_duration_setting(settings.min_uptime, "min-uptime", plan.restart.min_uptime);
    if (!uptime) return uptime.error();
    plan.restart.min_uptime = *uptime;
    auto on_threshold = parse_choice<OnThreshold>(settings.on_threshold, "on-threshold", OnThreshold::exit,
                                                  {{"exit", OnThreshold::exit}, {"park", OnThreshold::park}});
    if (!on_threshold) return on_threshold.error();
    plan.restart.on_threshold = *on_threshold;
    auto stop_signal = parse_setting<int>(settings.stop_signal, "stop-signal", plan.stop.signal, parse_stop_signal);
    if (!stop_signal) return stop_signal.error();
    plan.stop.signal = *stop_signal;
    auto stop_timeout = parse_duration_setting(settings.stop_timeout, "stop-timeout", plan.stop.timeout);
    if (!stop_timeout) return stop_timeout.error();
    plan.stop.timeout = *stop_timeout;
    auto scope = parse_choice<SignalScope>(settings.signal_scope, "signal-scope", SignalScope::group,
                                           {{"group", SignalScope::group}, {"worker", SignalScope::worker}});
    if (!scope) return scope.error();
    plan.forward.scope = *scope;
    for (const auto& rewrite : settings.rewrite_signal) {
        auto pairs = parse_rewrites(rewrite.value);
        if (!pairs) return setting_error(rewrite, "rewrite-signal", pairs.error().message);
        for (const auto& [from, to] : *pairs) {
            if (!plan.forward.rewrites.emplace(from, to).second) {
                return setting_error(rewrite, "rewrite-signal", signal_name(from) + " is rewritten twice");
            }
        }
    }
    auto ready = parse_setting<ReadySpec>(settings.ready, "ready", plan.ready, parse_ready);
    if (!ready) return ready.error();
    plan.ready = *ready;
    auto ready_timeout = parse_duration_setting(settings.ready_timeout, "ready-timeout", plan.ready.timeout);
    if (!ready_timeout) return ready_timeout.error();
    if (ready_timeout->count() == 0) return setting_error(*settings.ready_timeout, "ready-timeout", "must be above 0");
    plan.ready.timeout = *ready_timeout;
    if (settings.ready_timeout && plan.ready.mode != ReadyMode::notify) {
        plan.warnings.push_back(settings.ready_timeout->origin +
                                ": has no effect without --ready notify (it bounds the wait for READY=1)");
    }

    return Ok{};
}

Status plan_recycle_and_watchdog(const config::Settings& settings, const HostFacts& /*facts*/, Plan& plan) {
    auto rss = parse_setting<std::uint64_t>(settings.max_rss, "max-rss", 0,
                                            [](const std::string& v) { return parse_size(v); });
    if (!rss) return rss.error();
    if (settings.max_rss) {
        if (*rss == 0) return setting_error(*settings.max_rss, "max-rss", "must be above 0");
        plan.recycle.max_rss = *rss;
    }
    if (settings.max_lifetime) {
        auto lifetime = parse_positive_duration(settings.max_lifetime, "max-lifetime", Millis{0});
        if (!lifetime) return lifetime.error();
        plan.recycle.max_lifetime = *lifetime;
    }
    auto jitter = parse_duration_setting(settings.lifetime_jitter, "lifetime-jitter", plan.recycle.lifetime_jitter);
    if (!jitter) return jitter.error();
    plan.recycle.lifetime_jitter = *jitter;
    if (settings.lifetime_jitter && !plan.recycle.max_lifetime) {
        plan.warnings.push_back(setting_warning(*settings.lifetime_jitter, "lifetime-jitter",
                                                "has no effect without --max-lifetime (it spreads the lifetimes)"));
    }
    if (settings.watchdog) {
        auto watchdog = parse_positive_duration(settings.watchdog, "watchdog", Millis{0});
        if (!watchdog) return watchdog.error();
        plan.watchdog = *watchdog;
    }
    return Ok{};
}

}  // namespace preforkctl::plan
