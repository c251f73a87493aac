#include "plan/user.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace preforkctl::plan {

namespace {

constexpr std::uint64_t kMaxId = 4294967294U;

bool all_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct IdKind {
    const char* what;  // "user"
    const char* id;    // "uid"
};
constexpr IdKind kUser{"user", "uid"};
constexpr IdKind kGroup{"group", "gid"};

// The id that `text` names: a number as given, a name through its database entry (`found`).
Result<unsigned> resolve_id(const std::string& text, const IdKind& kind, std::optional<unsigned> found) {
    const bool negative = text.starts_with('-') && all_digits(std::string_view(text).substr(1));
    auto number = parse_id(text);
    if (!number || negative) {
        return Error{std::string(kind.id) + "s are 0 to " + std::to_string(kMaxId) + ", got '" + text + "'"};
    }
    if (*number) return **number;
    if (!found) {
        return Error{"unknown " + std::string(kind.what) + " '" + text + "'"};
    }
    return *found;
}

}  // namespace

Result<std::optional<unsigned>> parse_id(std::string_view text) {
    if (!all_digits(text)) return std::optional<unsigned>{};
    std::uint64_t value = 0;
    const auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || rest != text.data() + text.size() || value > kMaxId) {
        return Error{"ids are 0 to " + std::to_string(kMaxId) + ", got '" + std::string(text) + "'"};
    }
    return std::optional<unsigned>{static_cast<unsigned>(value)};
}

UserSpec split_user_spec(const std::string& text) {
    const std::size_t colon = text.find(':');
    if (colon == std::string::npos) return {text, std::nullopt};
    return {text.substr(0, colon), text.substr(colon + 1)};
}

Result<std::optional<Credentials>> decide_credentials(const std::string& text, const UserLookup& lookup,
                                                      unsigned euid, unsigned egid, bool can_switch) {
    const UserSpec spec = split_user_spec(text);
    if (spec.user.empty() || (spec.group && spec.group->empty())) {
        return Error{"expected USER[:GROUP] (names or numbers, e.g. www-data or 12345:12345), got '" + text + "'"};
    }
    const std::optional<PasswdEntry>& entry = lookup.user;
    auto uid = resolve_id(spec.user, kUser, entry ? std::optional<unsigned>(entry->uid) : std::nullopt);
    if (!uid) return uid.error();
    Credentials credentials;
    credentials.name = text;
    credentials.uid = *uid;
    credentials.in_passwd = entry.has_value();
    if (entry) {
        credentials.gid = entry->gid;
        credentials.groups = entry->groups;
    }
    if (spec.group) {
        auto gid = resolve_id(*spec.group, kGroup, lookup.group);
        if (!gid) return gid.error();
        if (entry) {
            // GROUP replaces the primary group; the memberships of the user database stay.
            std::erase(credentials.groups, entry->gid);
            if (std::find(credentials.groups.begin(), credentials.groups.end(), *gid) == credentials.groups.end()) {
                credentials.groups.insert(credentials.groups.begin(), *gid);
            }
        }
        credentials.gid = *gid;
    }
    if (!can_switch) {
        if (credentials.uid == euid && credentials.gid == egid) {
            return std::optional<Credentials>{};  // already that user; setgroups would need CAP_SETGID
        }
        return Error{"switching to uid " + std::to_string(credentials.uid) + ", gid " + std::to_string(credentials.gid) +
                     " needs root (CAP_SETUID and CAP_SETGID); preforkctl runs as uid " + std::to_string(euid) +
                     ", gid " + std::to_string(egid)};
    }
    return std::optional<Credentials>{credentials};
}

}  // namespace preforkctl::plan
