#pragma once
// make_plan: Settings + HostFacts -> Plan. Pure; every validation of user input lives here.

#include "config/settings.hpp"
#include "plan/host_facts.hpp"
#include "plan/plan.hpp"
#include "sys/result.hpp"

namespace preforkctl::plan {

/// Validates every setting and decides workers, CPUs, listeners, restart/stop/log policy and per-slot argv.
/// Errors name the option or file:line:col ("--workers: must be 'auto' or a number from 1 to 4096, got 'x'")
/// and carry the exit code (usage for flags, config for the file, 126/127 for the command).
Result<Plan> make_plan(const config::Settings& settings, const HostFacts& facts);

/// The printable plan for --print-plan (stable text; golden-tested).
std::string describe_plan(const Plan& plan);

}  // namespace preforkctl::plan
