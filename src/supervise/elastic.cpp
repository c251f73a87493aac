// Elastic workers (§12, -n MIN..MAX): the worker count follows the listeners' accept queues. What to do is
// decide_elastic's; this file samples the queues (TCP_INFO), waits for a connection where sampling is not
// needed, and adds or removes slots.
#include <spdlog/spdlog.h>

#include "net/readable_watch.hpp"
#include "supervise/supervisor_impl.hpp"

namespace preforkctl::supervise {

std::vector<int> Supervisor::listening_fds() const {
    std::vector<int> fds;
    for (const net::Listener& listener : listeners_.shared) fds.push_back(listener.fd.get());
    for (const auto& slot : listeners_.per_slot) {
        for (const net::Listener& listener : slot) fds.push_back(listener.fd.get());
    }
    return fds;
}

// At start, and after ctl scale, TTIN or TTOU changed the count: a count now between the bounds is sampled
// from here on, one back at MIN only watched.
void Supervisor::start_elastic() {
    if (!plan_.elastic || stopping_) return;
    elastic_timer_.cancel();
    if (elastic_watch_.is_open()) elastic_watch_.close();
    look_at_queues(false);
}

void Supervisor::look_at_queues(bool woken) {
    if (!plan_.elastic || stopping_) return;
    unsigned waiting = 0;
    for (const int fd : listening_fds()) waiting += net::waiting_connections(fd);
    const ElasticDecision decision =
        decide_elastic(elastic_state_, waiting, live_slots(), woken, Clock::now(), *plan_.elastic);
    elastic_state_ = decision.state;
    const Origin origin{std::string("elastic: ") + decision.why, false};
    if (decision.step == ElasticStep::up) {
        if (auto added = add_slot(origin, decision.reason); !added) spdlog::error("{}", added.error().message);
    } else if (decision.step == ElasticStep::down) {
        if (auto removed = remove_slot(origin, decision.reason); !removed) spdlog::warn("{}", removed.error().message);
    }
    if (decision.next.watch_readable) {
        watch_queues();
    } else {
        sample_after(decision.next.delay);
    }
}

void Supervisor::sample_after(Millis delay) {
    elastic_timer_.expires_after(delay);
    elastic_timer_.async_wait([this](const boost::system::error_code& error) {
        if (!error) look_at_queues(false);
    });
}

// Until a connection arrives nothing can change: no timer, no wake-up. A new epoll set each time, so that
// the sockets of slots removed since then are not in it.
void Supervisor::watch_queues() {
    if (elastic_watch_.is_open()) elastic_watch_.close();
    auto watch = net::watch_readable(listening_fds());
    if (!watch) {
        spdlog::warn("{}; sampling the accept queues instead", watch.error().message);
        sample_after(sample_period(*plan_.elastic));
        return;
    }
    elastic_watch_.assign(watch->release());
    elastic_watch_.async_wait(asio::posix::stream_descriptor::wait_read,
                              [this](const boost::system::error_code& error) {
                                  if (error) return;
                                  elastic_watch_.close();
                                  look_at_queues(true);
                              });
}

}  // namespace preforkctl::supervise
