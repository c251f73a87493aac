#include "supervise/notify_senders.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace preforkctl::supervise {

bool speaks_for_worker(pid_t worker, uid_t worker_uid, const sys::NotifySender& sender) {
    if (sender.pid <= 0) return false;
    if (sender.pid == worker) return true;
    if (!sender.ancestors) return sender.uid == worker_uid;
    return std::find(sender.ancestors->begin(), sender.ancestors->end(), worker) != sender.ancestors->end();
}

int RejectionLog::note(std::chrono::steady_clock::time_point now) {
    if (logged_ && now - last_ < interval_) {
        ++quiet_;
        return 0;
    }
    logged_ = true;
    last_ = now;
    return std::exchange(quiet_, 0) + 1;
}

std::vector<std::string> worker_notifications(int fd, int slot, pid_t worker, uid_t worker_uid) {
    static RejectionLog rejections(std::chrono::seconds(10));
    std::vector<std::string> accepted;
    for (sys::NotifyMessage& message : sys::receive_notify_messages(fd)) {
        if (speaks_for_worker(worker, worker_uid, message.sender)) {
            accepted.push_back(std::move(message.text));
            continue;
        }
        if (const int count = rejections.note(std::chrono::steady_clock::now()); count > 0) {
            spdlog::warn("slot {}: ignored a notification from pid {} (uid {}), which is not worker {} or a process "
                         "below it{}",
                         slot, message.sender.pid, message.sender.uid, worker,
                         count > 1 ? " (" + std::to_string(count - 1) + " more since the last such warning)" : "");
        }
    }
    return accepted;
}

}  // namespace preforkctl::supervise
