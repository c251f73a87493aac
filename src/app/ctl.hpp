#pragma once
// `preforkctl ctl ...`: the client of a running preforkctl's control socket (SPEC §11).

namespace preforkctl::app {

/// Runs `preforkctl ctl ARGS` (argv[0] is "ctl"); returns the exit status: 0 done, 1 preforkctl said no,
/// 2 usage, 4 cannot connect.
int run_ctl(int argc, char** argv);

}  // namespace preforkctl::app
