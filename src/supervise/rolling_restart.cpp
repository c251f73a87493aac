#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "supervise/supervisor_impl.hpp"

namespace preforkctl::supervise {

// A rolling restart (SIGHUP, ctl reload, ctl restart): replace the workers one slot at a time; the old
// worker of a slot is stopped only once its replacement is ready, so the slot never stops serving (§7).
// One of every slot while one is under way queues another after it; a single slot joins the current one.
void Supervisor::begin_rolling_restart(const Origin& origin, std::optional<int> only_slot, bool recycle) {
    if (stopping_) return;
    if (rolling_) {
        if (!only_slot) {
            spdlog::info("{} during a rolling restart: another one follows when this one is done", origin.text);
            rolling_again_ = true;
        } else if (std::find(rolling_queue_.begin(), rolling_queue_.end(), *only_slot) == rolling_queue_.end()) {
            spdlog::info("{}: slot {} joins the rolling restart under way", origin.text, *only_slot);
            rolling_queue_.push_back(*only_slot);
        }
        return;
    }
    rolling_ = true;
    rolling_recycle_ = recycle;
    rolling_failed_slot_ = -1;
    for (const auto& slot : slots_) {
        if (!slot->removing && (!only_slot || slot->spec.slot == *only_slot)) rolling_queue_.push_back(slot->spec.slot);
    }
    if (recycle) {
        // A recycle replaces a worker by one of the same settings: no new generation, nothing to tell systemd.
        next_rolling_step();
        return;
    }
    ++generation_;
    announced_ready_ = false;
    spdlog::info("{}: rolling restart of {} (generation {})", origin.text,
                 only_slot ? "slot " + std::to_string(*only_slot)
                           : std::to_string(rolling_queue_.size()) + (rolling_queue_.size() == 1 ? " slot" : " slots"),
                 generation_);
    const auto now_usec = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
    notify_systemd("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(now_usec) + "\nSTATUS=rolling restart");
    next_rolling_step();
}

void Supervisor::next_rolling_step() {
    if (!rolling_) return;
    while (!rolling_queue_.empty() && !stopping_) {
        const int number = rolling_queue_.front();
        rolling_queue_.pop_front();
        for (auto& slot : slots_) {
            if (slot->spec.slot == number && !slot->removing) {
                spdlog::debug("rolling restart: slot {}", number);
                if (!rolling_recycle_) ++rolling_replaced_;
                apply(*slot, event::Replace{});  // ReplaceDone calls back here
                return;
            }
        }
    }
    rolling_ = false;
    if (stopping_) return;
    if (rolling_recycle_) {
        spdlog::debug("recycling done");
    } else {
        spdlog::info("rolling restart done (generation {})", generation_);
    }
    if (rolling_again_ && rolling_failed_slot_ < 0) {
        rolling_again_ = false;
        begin_rolling_restart(Origin{"queued reload", false}, std::nullopt);
        return;
    }
    rolling_again_ = false;
    finish_rolling_restart(rolling_failed_slot_ < 0);
    announce_ready_if_all_ready();
}

// Answers the clients that wait for the end of the rolling restart (ctl reload/restart).
void Supervisor::finish_rolling_restart(bool complete) {
    for (const net::Listener& listener : retiring_listeners_) spdlog::info("closed {}", listener.address());
    retiring_listeners_.clear();  // listeners a reload removed: the old workers that served them are gone
    control::Reply reply;
    if (stopping_) {
        reply = control::refused("preforkctl began to stop before the rolling restart was done");
    } else if (complete) {
        reply.message = "rolling restart done (generation " + std::to_string(generation_) + ")";
    } else {
        reply = control::refused("rolling restart stopped at slot " + std::to_string(rolling_failed_slot_) +
                                 ": its new worker failed before it was ready; the old workers keep serving");
    }
    auto waiters = std::move(rolling_waiters_);
    rolling_waiters_.clear();
    for (const control::Respond& respond : waiters) respond(reply);
}

}  // namespace preforkctl::supervise
