#pragma once

namespace preforkctl::app {

/// The whole program: settings -> host facts -> plan -> listeners -> supervise. Returns the exit status.
int run(int argc, char** argv);

}  // namespace preforkctl::app
