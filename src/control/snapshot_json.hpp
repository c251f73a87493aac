#pragma once
// The status Snapshot as JSON: the body of the answer to `{"cmd":"status"}` and what `ctl status --json`
// prints. Field names are the struct members' names. Reading is lenient about what is there (a field that
// is missing or null takes its default, unknown fields are ignored, so one preforkctl can show another
// version's answer) and strict about what a field holds (a wrong type is an Error). Pure.

#include <nlohmann/json_fwd.hpp>

#include "control/snapshot.hpp"
#include "sys/result.hpp"

namespace preforkctl::control {

/// Every field of `snapshot`; an absent last_exit, usage, queue or backlog is null.
nlohmann::json snapshot_to_json(const Snapshot& snapshot);

/// The Snapshot `json` describes; the Error names the first field of the wrong type or range
/// ("\"slots[1].pid\" must be an integer"). Never throws.
Result<Snapshot> snapshot_from_json(const nlohmann::json& json);

}  // namespace preforkctl::control
