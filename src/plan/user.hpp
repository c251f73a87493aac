#pragma once
// --user USER[:GROUP]: numbers are taken as given, names come from the user database (sys::look_up_user).

#include <optional>
#include <string>
#include <string_view>

#include "plan/host_facts.hpp"
#include "plan/plan.hpp"
#include "sys/result.hpp"

namespace preforkctl::plan {

/// A uid or gid written in decimal: none when `text` is not all digits (a name); an error when it is but
/// does not fit 0..4294967294 (4294967295 is (uid_t)-1, which setuid takes as "no change").
Result<std::optional<unsigned>> parse_id(std::string_view text);

/// "USER[:GROUP]" split at the first colon.
struct UserSpec {
    std::string user;
    std::optional<std::string> group;
};
UserSpec split_user_spec(const std::string& text);

/// The workers' credentials for --user `text`. USER's passwd entry, when there is one, gives the primary
/// group and the supplementary groups; a numeric uid without one runs with gid 0 (as Docker and Kubernetes
/// do) or GROUP, and no supplementary groups. `euid`/`egid` are preforkctl's own: asking for them needs no
/// switch (the result is then none); any other identity needs `can_switch` (CAP_SETUID and CAP_SETGID).
Result<std::optional<Credentials>> decide_credentials(const std::string& text, const UserLookup& lookup,
                                                      unsigned euid, unsigned egid, bool can_switch);

}  // namespace preforkctl::plan
