#include <cstring>

#include "app/cli.hpp"
#include "app/ctl.hpp"
#include "app/run.hpp"

int main(int argc, char** argv) {
    // `preforkctl ctl ...` talks to a running preforkctl, `preforkctl completion SHELL` prints a completion
    // script; a server program called ctl or completion goes after `--`.
    if (argc > 1 && std::strcmp(argv[1], "ctl") == 0) return preforkctl::app::run_ctl(argc - 1, argv + 1);
    if (argc > 1 && std::strcmp(argv[1], "completion") == 0) return preforkctl::app::run_completion(argc - 1, argv + 1);
    return preforkctl::app::run(argc, argv);
}
