// The one path of requests: a signal (TERM, HUP, TTIN, TTOU) and a `ctl` command end here as the same
// control::Request, so that what each does cannot drift apart. What happens on scale, restart, reload, stop
// and signal is decided in this file.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>

#include "plan/durations.hpp"
#include "supervise/scaling_policy.hpp"
#include "supervise/supervisor_impl.hpp"

namespace preforkctl::supervise {

namespace {

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

void Supervisor::handle(const control::Request& request, const Origin& origin, const control::Respond& respond) {
    const auto answer = [&](const control::Reply& reply) {
        if (!reply.ok && origin.from_signal) spdlog::warn("{}: {}", origin.text, reply.message);
        if (!reply.ok && !origin.from_signal) spdlog::info("{}: refused: {}", origin.text, reply.message);
        if (respond) respond(reply);
    };
    std::visit(Overloaded{
                   [&](const control::request::Status&) { answer(control::Reply{true, "", snapshot(), false}); },
                   [&](const control::request::Scale& scale_request) { answer(scale(scale_request, origin)); },
                   [&](const control::request::Restart& restart) {
                       if (auto refusal = restart_slots(restart.slot, restart.wait, origin, respond)) answer(*refusal);
                   },
                   [&](const control::request::Reload& reload) {
                       std::optional<int> count;
                       if (auto refusal = reread_configuration(origin, count)) {
                           answer(*refusal);
                           return;
                       }
                       if (auto refusal = restart_slots(std::nullopt, reload.wait, origin, respond)) answer(*refusal);
                       if (count) {
                           const control::Reply scaled = scale({control::request::Scale::Kind::to, *count}, origin);
                           if (!scaled.ok) spdlog::warn("{}: {}", origin.text, scaled.message);
                       }
                   },
                   [&](const control::request::Stop& stop_request) { stop(stop_request, origin, answer); },
                   [&](const control::request::Signal& signal) { answer(signal_slots(signal, origin)); },
                   [&](const control::request::Upgrade& upgrade_request) {
                       if (auto refusal = upgrade(upgrade_request, origin, respond)) answer(*refusal);
                   },
               },
               request);
}

// restart SLOT|all, reload, SIGHUP. A waiting client is answered by finish_rolling_restart, which may run
// before begin_rolling_restart returns (workers that are ready at exec); others at once. Returns the answer
// when there is one to give now.
std::optional<control::Reply> Supervisor::restart_slots(std::optional<int> slot, bool wait, const Origin& origin,
                                                        const control::Respond& respond) {
    if (stopping_) return control::refused("preforkctl is stopping");
    if (slot) {
        const bool known = std::any_of(slots_.begin(), slots_.end(), [&](const auto& runtime) {
            return runtime->spec.slot == *slot && !runtime->removing;
        });
        if (!known) return control::refused("there is no slot " + std::to_string(*slot) + " (ctl status lists them)");
    }
    const bool waiting = wait && respond;
    if (waiting) rolling_waiters_.push_back(respond);
    begin_rolling_restart(origin, slot);
    if (waiting) return std::nullopt;
    return control::Reply{true, "rolling restart begun (generation " + std::to_string(generation_) + ")",
                          std::nullopt, false};
}

// stop, TERM, INT. The answer goes out before the stop begins: begin_stop may end the loop at once (no workers
// left). A second stop (signal or ctl) kills what is left at once.
void Supervisor::stop(const control::request::Stop& request, const Origin& origin,
                      const std::function<void(const control::Reply&)>& answer) {
    if (stopping_) {
        spdlog::warn("{} again: killing every worker now", origin.text);
        answer(control::Reply{true, "already stopping: killing every worker now", std::nullopt, true});
        kill_all();
        return;
    }
    stop_requested_ = true;
    const plan::Millis timeout = request.timeout.value_or(plan_.stop.timeout);
    answer(control::Reply{true,
                          "stopping " + workers_text(live_slots()) + " (" + plan::signal_name(plan_.stop.signal) +
                              ", SIGKILL after " + plan::format_duration(timeout) + ")",
                          std::nullopt, true});
    begin_stop(origin.text, request.timeout);
}

control::Reply Supervisor::scale(const control::request::Scale& request, const Origin& origin) {
    if (stopping_) return control::refused("preforkctl is stopping");
    const int now = live_slots();
    const Result<int> decided = decide_scale(request, now, plan_);
    if (!decided) return control::refused(decided.error().message);
    const int target = *decided;
    if (target == now) return control::Reply{true, "already at " + workers_text(now), std::nullopt, false};
    while (live_slots() < target) {
        if (auto added = add_slot(origin); !added) {
            spdlog::error("{}: {}", origin.text, added.error().message);
            return control::refused(added.error().message + " (now at " + workers_text(live_slots()) + ")");
        }
    }
    while (live_slots() > target) {
        if (auto removed = remove_slot(origin); !removed) return control::refused(removed.error().message);
    }
    start_elastic();
    return control::Reply{true, "scaling from " + std::to_string(now) + " to " + workers_text(target), std::nullopt,
                          false};
}

// ctl signal SIG [SLOT]: to every worker of the slot (current, replaced and draining), reaching its process
// group or the worker process alone as --signal-scope says. SIG is sent as given: --rewrite-signal is about
// what preforkctl receives, and a ctl user names the signal the workers are to get.
control::Reply Supervisor::signal_slots(const control::request::Signal& request, const Origin& origin) {
    const bool to_group = plan_.forward.scope == plan::SignalScope::group;
    int sent = 0;
    bool found = !request.slot.has_value();
    for (const auto& slot : slots_) {
        if (request.slot && slot->spec.slot != *request.slot) continue;
        found = true;
        for (const int pid : worker_pids(slot->state)) sent += ::kill(to_group ? -pid : pid, request.signal) == 0 ? 1 : 0;
    }
    if (!found) return control::refused("there is no slot " + std::to_string(*request.slot) + " (ctl status lists them)");
    const std::string name = plan::signal_name(request.signal);
    spdlog::info("{}: sent {} to {}", origin.text, name, workers_text(sent));
    if (sent == 0) return control::refused("no worker is running" + (request.slot ? " in slot " + std::to_string(*request.slot) : std::string()));
    return control::Reply{true, "sent " + name + " to " + workers_text(sent), std::nullopt, false};
}

}  // namespace preforkctl::supervise
