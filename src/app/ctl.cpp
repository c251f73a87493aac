#include "app/ctl.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/client.hpp"
#include "control/snapshot_json.hpp"
#include "control/status_table.hpp"
#include "plan/control_path.hpp"
#include "plan/durations.hpp"
#include "sys/exit_code.hpp"

namespace preforkctl::app {

namespace {

constexpr const char* kHelp =
    "Usage: preforkctl ctl [OPTIONS] COMMAND [ARGS]\n"
    "Steer a running preforkctl through its control socket.\n"
    "\n"
    "Commands:\n"
    "  status [--json]            slots, workers, restarts, memory and CPU, listeners and their accept queues\n"
    "  scale N|+N|-N              run N workers, or N more or fewer (one at least)\n"
    "  restart SLOT|all           rolling restart of one slot or of all, each new worker ready before the old stops\n"
    "  reload                     re-read the -c and --env-file files, then a rolling restart of every slot\n"
    "                             (what SIGHUP does)\n"
    "  stop [--timeout DUR]       stop every worker gracefully (SIGKILL after DUR) and exit\n"
    "  signal SIG [SLOT]          send SIG to every worker's process group, or to one slot's\n"
    "  upgrade [--binary PATH]    re-execute preforkctl in place (same pid, workers untouched); PATH defaults\n"
    "                             to the executable it was started from\n"
    "\n"
    "Options:\n"
    "  --name NAME                the preforkctl started with --name NAME (default: the only one running)\n"
    "  --socket PATH              the control socket at PATH (as given to --control)\n"
    "  --json                     status as one JSON document\n"
    "  --no-wait                  answer once a restart, reload or stop has begun, not when it is done\n"
    "  --color auto|always|never  colour the status table (default auto: on a tty without NO_COLOR)\n"
    "  -h, --help                 this text\n"
    "\n"
    "Exit status: 0 done, 1 preforkctl refused (the reason is printed), 2 usage, 4 cannot connect.\n"
    "See preforkctl(1), CONTROL.\n";

struct CtlOptions {
    std::string socket;
    std::string name;
    bool json = false;
    bool wait = true;
    std::string color = "auto";
    std::vector<std::string> words;
};

int usage_error(const std::string& message) {
    std::fprintf(stderr, "preforkctl: error: %s (see preforkctl ctl --help)\n", message.c_str());
    return to_int(ExitCode::usage);
}

int failure(const Error& error) {
    std::fprintf(stderr, "preforkctl: error: %s\n", error.message.c_str());
    return to_int(error.exit);
}

// Options may come before the command or after it (`ctl status --json`); the command's own words stay in order.
std::optional<int> parse(int argc, char** argv, CtlOptions& options) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&](const char* option) -> std::optional<std::string> {
            const std::string prefix = std::string(option) + "=";
            if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
            if (arg != option) return std::nullopt;
            if (i + 1 >= argc) return std::string("\x01");
            return std::string(argv[++i]);
        };
        if (arg == "-h" || arg == "--help") {
            std::fputs(kHelp, stdout);
            return 0;
        }
        if (arg == "--json") {
            options.json = true;
        } else if (arg == "--no-wait") {
            options.wait = false;
        } else if (auto socket = value("--socket")) {
            if (*socket == "\x01" || socket->empty()) return usage_error("--socket needs a PATH");
            options.socket = *socket;
        } else if (auto name = value("--name")) {
            if (*name == "\x01" || name->empty()) return usage_error("--name needs a NAME");
            options.name = *name;
        } else if (auto color = value("--color")) {
            if (*color != "auto" && *color != "always" && *color != "never") {
                return usage_error("--color must be auto, always or never");
            }
            options.color = *color;
        } else if (arg == "--timeout" && !options.words.empty() && options.words.front() == "stop") {
            options.words.push_back(arg);  // the stop command's own option
        } else if (arg == "--binary" && !options.words.empty() && options.words.front() == "upgrade") {
            options.words.push_back(arg);  // the upgrade command's own option
            if (i + 1 < argc) options.words.emplace_back(argv[++i]);
        } else if (arg.rfind("--", 0) == 0 && arg.rfind("--timeout", 0) != 0 && arg.rfind("--binary=", 0) != 0) {
            return usage_error("unknown option " + arg);
        } else {
            options.words.push_back(arg);
        }
    }
    if (!options.socket.empty() && !options.name.empty()) return usage_error("--socket and --name exclude each other");
    return std::nullopt;
}

Result<std::string> socket_path(const CtlOptions& options) {
    if (!options.socket.empty()) return options.socket;
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    const std::string runtime_dir = xdg != nullptr ? xdg : "";
    if (!options.name.empty()) return plan::control_socket_path(options.name, ::geteuid(), runtime_dir);
    return control::find_only_socket(plan::control_directory(::geteuid(), runtime_dir));
}

bool use_color(const std::string& choice) {
    if (choice == "always") return true;
    if (choice == "never") return false;
    const char* no_color = std::getenv("NO_COLOR");
    return ::isatty(1) == 1 && (no_color == nullptr || *no_color == '\0');
}

}  // namespace

int run_ctl(int argc, char** argv) {
    CtlOptions options;
    if (auto exit_now = parse(argc, argv, options)) return *exit_now;
    auto request = control::request_from_words(options.words);
    if (!request) return usage_error(request.error().message);
    if (options.json && !std::holds_alternative<control::request::Status>(*request)) {
        return usage_error("--json goes with status");
    }
    if (auto* restart = std::get_if<control::request::Restart>(&*request)) restart->wait = options.wait;
    if (auto* reload = std::get_if<control::request::Reload>(&*request)) reload->wait = options.wait;
    auto path = socket_path(options);
    if (!path) return failure(path.error());

    // A restart that is waited for takes as long as the workers need to become ready; the rest is quick.
    const bool waits = options.wait && (std::holds_alternative<control::request::Restart>(*request) ||
                                        std::holds_alternative<control::request::Reload>(*request));
    // An upgrade is answered by the new image; running the check-only copy and the exec take seconds at most.
    if (auto* upgrade = std::get_if<control::request::Upgrade>(&*request); upgrade && upgrade->binary) {
        if (upgrade->binary->front() != '/') {
            char here[4096];
            if (::getcwd(here, sizeof here) != nullptr) upgrade->binary = std::string(here) + "/" + *upgrade->binary;
        }
    }
    auto exchange = control::send_request(*path, *request,
                                          waits ? std::nullopt : std::optional(std::chrono::milliseconds(30'000)));
    if (!exchange) return failure(exchange.error());
    const control::Reply& reply = exchange->reply;
    if (!reply.ok) return failure(Error{reply.message, 0, ExitCode::internal});
    if (reply.status) {
        if (options.json) {
            std::printf("%s\n", control::snapshot_to_json(*reply.status).dump(2).c_str());
        } else {
            std::fputs(control::render_status_table(*reply.status, use_color(options.color)).c_str(), stdout);
        }
        return 0;
    }
    std::printf("%s\n", reply.message.c_str());
    std::fflush(stdout);
    if (std::holds_alternative<control::request::Stop>(*request) && options.wait) {
        control::wait_until_closed(exchange->connection, std::nullopt);
        std::printf("stopped\n");
    }
    return 0;
}

}  // namespace preforkctl::app
