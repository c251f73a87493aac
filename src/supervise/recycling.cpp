// Recycling (§12): a worker that grew too big (--max-rss, its whole process tree) or too old
// (--max-lifetime, plus 0..--lifetime-jitter so that workers started together do not recycle together) is
// replaced like one step of a rolling restart: the new worker first, the old one stopped once the new one
// is ready. Recycles queue behind each other, one slot at a time.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "plan/durations.hpp"
#include "supervise/supervisor_impl.hpp"
#include "sys/proc_usage.hpp"

namespace preforkctl::supervise {

namespace {

constexpr Millis kRssPeriod{1'000};  // how often --max-rss reads the workers' memory

// "2.4 MiB": one decimal, enough to compare with the limit.
std::string mib_text(std::uint64_t bytes) {
    const std::uint64_t tenths = (bytes * 10 + (1U << 19)) >> 20;
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " MiB";
}

}  // namespace

void Supervisor::start_recycling() {
    if (!plan_.recycle.max_rss) return;
    rss_timer_.expires_after(kRssPeriod);
    rss_timer_.async_wait([this](const boost::system::error_code& error) {
        if (error || stopping_) return;
        sample_rss();
        start_recycling();
    });
}

// The lifetime counts from the start of the worker.
void Supervisor::arm_lifetime(SlotRuntime& slot, int pid, Millis elapsed) {
    if (!plan_.recycle.max_lifetime) return;
    Millis lifetime = *plan_.recycle.max_lifetime;
    if (plan_.recycle.lifetime_jitter.count() > 0) {
        std::uniform_int_distribution<Millis::rep> jitter(0, plan_.recycle.lifetime_jitter.count());
        lifetime += Millis{jitter(jitter_random_)};
    }
    wait_for_lifetime(slot, pid, std::max(Millis{0}, lifetime - elapsed));
}

// A recycle that did not happen (a rolling restart that failed dropped it from the queue, say) is asked for
// again one lifetime later; a new worker re-arms the timer for itself, which cancels this wait.
void Supervisor::wait_for_lifetime(SlotRuntime& slot, int pid, Millis lifetime) {
    slot.lifetime_timer.expires_after(lifetime);
    slot.lifetime_timer.async_wait([this, &slot, pid, lifetime](const boost::system::error_code& error) {
        if (error || slot.state.pid != pid || stopping_) return;
        recycle(slot, "lifetime",
                std::string("it reached its lifetime of ") + plan::format_duration(lifetime) + " (--max-lifetime)");
        // A replacement that began at once armed the timer for the new worker: that one must not be cancelled.
        if (slot.state.pid == pid) wait_for_lifetime(slot, pid, lifetime);
    });
}

void Supervisor::sample_rss() {
    std::vector<int> roots;
    for (const auto& slot : slots_) {
        if (slot->state.phase == Phase::running && !slot->state.replacing && !slot->removing) {
            roots.push_back(slot->state.pid);
        }
    }
    if (roots.empty()) return;
    const std::map<int, sys::TreeUsage> usage = sys::read_tree_usage(roots);
    for (auto& slot : slots_) {
        const auto found = usage.find(slot->state.pid);
        if (found == usage.end() || found->second.rss_bytes <= *plan_.recycle.max_rss) continue;
        const int processes = found->second.processes;
        recycle(*slot, "rss",
                std::string("the RSS of its ") +
                    (processes == 1 ? std::string("1 process") : std::to_string(processes) + " processes") + " is " +
                    mib_text(found->second.rss_bytes) + ", above --max-rss " +
                    plan::format_size(*plan_.recycle.max_rss));
    }
}

void Supervisor::recycle(SlotRuntime& slot, const std::string& reason, const std::string& why) {
    if (stopping_ || slot.removing || slot.state.phase != Phase::running || slot.state.replacing) return;
    if (std::find(rolling_queue_.begin(), rolling_queue_.end(), slot.spec.slot) != rolling_queue_.end()) return;
    ++recycles_[reason];
    spdlog::info("slot {}: recycling worker {}: {}", slot.spec.slot, slot.state.pid, why);
    begin_rolling_restart(Origin{"recycle", false}, slot.spec.slot, true);
}

}  // namespace preforkctl::supervise
