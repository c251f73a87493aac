#include <spdlog/spdlog.h>

#include <algorithm>

#include "net/steering.hpp"
#include "supervise/scaling_policy.hpp"
#include "supervise/supervisor_impl.hpp"

namespace preforkctl::supervise {

namespace {

// --steer cpu: the program's modulus must follow the size of the groups at once; a larger one picks indices
// beyond the group, for which the kernel falls back to its hash.
void steer_again(const plan::Plan& plan, const net::ListenerSet& listeners) {
    if (plan.steer != plan::SteerMode::cpu) return;
    if (auto steered = net::attach_cpu_steering(listeners); !steered) {
        spdlog::error("{}; connections are spread by hash until the next change", steered.error().message);
    }
}

}  // namespace

int Supervisor::live_slots() const {
    int live = 0;
    for (const auto& slot : slots_) live += slot->removing ? 0 : 1;
    return live;
}

// One more slot, numbered after the highest, pinned like a planned slot of that number would be.
Status Supervisor::add_slot(const Origin& origin, const std::string& reason) {
    int number = 0;
    for (const auto& slot : slots_) number = std::max(number, slot->spec.slot + 1);
    if (plan_.socket_mode == plan::SocketMode::reuseport) {
        auto sockets = net::bind_reuseport_slot(plan_, listeners_.ports);
        if (!sockets) return Error{"cannot add slot " + std::to_string(number) + ": " + sockets.error().message};
        if (listeners_.per_slot.size() <= static_cast<std::size_t>(number)) {
            listeners_.per_slot.resize(static_cast<std::size_t>(number) + 1);
        }
        listeners_.per_slot[static_cast<std::size_t>(number)] = std::move(*sockets);
        socket_watch_.watch_slot(number);
        steer_again(plan_, listeners_);
    }
    auto slot = make_slot(plan::make_slot_spec(plan_, number));
    if (!slot) return Error{"cannot add slot " + std::to_string(number) + ": " + slot.error().message};
    slots_.push_back(std::move(*slot));
    ++scale_ups_;
    ++scaled_up_by_[reason];
    spdlog::info("{}: adding slot {} ({})", origin.text, number, workers_text(live_slots()));
    apply(*slots_.back(), event::Start{});
    return Ok{};
}

// The highest slot is stopped gracefully and then removed with its reuseport sockets (its output pipes stay
// with the slot number, see make_slot).
Status Supervisor::remove_slot(const Origin& origin, const std::string& reason) {
    SlotRuntime* highest = nullptr;
    for (auto& slot : slots_) {
        if (!slot->removing && (highest == nullptr || slot->spec.slot > highest->spec.slot)) highest = slot.get();
    }
    if (highest == nullptr) return Error{"no slot to remove"};
    highest->removing = true;
    std::erase(rolling_queue_, highest->spec.slot);
    ++scale_downs_;
    ++scaled_down_by_[reason];
    spdlog::info("{}: removing slot {} ({} left)", origin.text, highest->spec.slot, workers_text(live_slots()));
    apply(*highest, event::Stop{});
    remove_finished_slots();
    return Ok{};
}

void Supervisor::remove_finished_slots() {
    if (stopping_) return;
    for (auto it = slots_.begin(); it != slots_.end();) {
        SlotRuntime& slot = **it;
        if (!slot.removing || !is_settled(slot.state)) {
            ++it;
            continue;
        }
        const auto number = static_cast<std::size_t>(slot.spec.slot);
        socket_watch_.unwatch_slot(slot.spec.slot);
        if (number < listeners_.per_slot.size() && !listeners_.per_slot[number].empty()) {
            listeners_.per_slot[number].clear();  // closes its sockets
            steer_again(plan_, listeners_);
        }
        spdlog::debug("slot {} removed", slot.spec.slot);
        it = slots_.erase(it);
    }
}

}  // namespace preforkctl::supervise
