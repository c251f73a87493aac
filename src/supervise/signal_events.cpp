#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>

#include "plan/durations.hpp"
#include "supervise/forwarding.hpp"
#include "supervise/supervisor_impl.hpp"

namespace preforkctl::supervise {

void Supervisor::read_signals() {
    signal_reader_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& error) {
        if (error) return;
        for (const sys::SignalInfo& signal : sys::read_signals(signal_reader_.native_handle())) {
            handle_signal(signal);
        }
        read_signals();
    });
}

void Supervisor::handle_signal(const sys::SignalInfo& signal) {
    namespace request = control::request;
    const Origin origin{plan::signal_name(signal.signal), true};
    switch (signal.signal) {
        case SIGCHLD:
            reap();
            break;
        case SIGTERM:
        case SIGINT:
            handle(request::Stop{}, origin, nullptr);
            break;
        case SIGHUP:
            handle(request::Reload{}, origin, nullptr);
            break;
        case SIGTTIN:
            handle(request::Scale{request::Scale::Kind::up, 1}, origin, nullptr);
            break;
        case SIGTTOU:
            // Only a SIGTTOU someone sent scales down; the terminal driver's own (SI_KERNEL) cannot even
            // arise while it is blocked, but a queued one must not remove a worker either.
            if (signal.code != SI_KERNEL) handle(request::Scale{request::Scale::Kind::down, 1}, origin, nullptr);
            break;
        case SIGTSTP:
            suspend_workers();
            break;
        case SIGCONT:
            signal_workers(SIGCONT);
            break;
        default:
            // plan::kForwardedSignals (USR1, USR2, WINCH, QUIT, ...): forwarded to every worker (--signal-scope, --rewrite-signal).
            forward_signal(signal.signal);
            break;
    }
}

void Supervisor::forward_signal(int signal) {
    const std::optional<Forward> forward = forward_of(plan_.forward, signal);
    if (!forward) {
        spdlog::debug("{} dropped (--rewrite-signal)", plan::signal_name(signal));
        return;
    }
    signal_workers(forward->signal, forward->to_group);
    spdlog::debug("{} forwarded{} to every worker{}", plan::signal_name(signal),
                  forward->signal == signal ? "" : " as " + plan::signal_name(forward->signal),
                  forward->to_group ? "'s process group" : " process");
}

void Supervisor::signal_workers(int signal, bool to_group) {
    for (auto& slot : slots_) {
        for (const int pid : worker_pids(slot->state)) ::kill(to_group ? -pid : pid, signal);
    }
}

// Job control (^Z): the workers are in their own sessions, where the terminal's SIGTSTP never reaches
// them and would not stop an orphaned process group anyway, so they get SIGSTOP; then preforkctl stops
// itself so the shell sees the job stopped. `fg` sends SIGCONT, which is passed on.
void Supervisor::suspend_workers() {
    spdlog::info("SIGTSTP: stopping every worker (SIGCONT resumes them)");
    signal_workers(SIGSTOP);
    if (::getpid() != 1) ::kill(::getpid(), SIGSTOP);
}

}  // namespace preforkctl::supervise
