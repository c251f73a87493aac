#include "plan/user.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace preforkctl;
using namespace preforkctl::plan;
using ::testing::HasSubstr;

namespace {

UserLookup www_data() {
    UserLookup lookup;
    lookup.user = PasswdEntry{"www-data", 33, 33, {33, 4}};
    return lookup;
}

}  // namespace

TEST(ParseId, TakesDecimalNumbersThatFitAUidAndLeavesNamesAlone) {
    EXPECT_EQ(**parse_id("0"), 0u);
    EXPECT_EQ(**parse_id("12345"), 12345u);
    EXPECT_EQ(**parse_id("4294967294"), 4294967294u);
    EXPECT_FALSE(*parse_id("www-data"));
    EXPECT_FALSE(*parse_id(""));
    EXPECT_FALSE(*parse_id("-1"));
    EXPECT_FALSE(parse_id("4294967295")) << "(uid_t)-1 means 'no change' to setuid";
    EXPECT_FALSE(parse_id("99999999999999999999"));
}

TEST(DecideCredentials, ANumericUidWithoutAPasswdEntryRunsWithGidZeroAndNoGroupsLikeDocker) {
    auto credentials = decide_credentials("12345", UserLookup{}, 0, 0, true);
    ASSERT_TRUE(credentials) << credentials.error().message;
    ASSERT_TRUE(*credentials);
    EXPECT_EQ((*credentials)->uid, 12345u);
    EXPECT_EQ((*credentials)->gid, 0u);
    EXPECT_TRUE((*credentials)->groups.empty());
    EXPECT_FALSE((*credentials)->in_passwd);
}

TEST(DecideCredentials, NumericUidAndGidAreTakenAsGivenWithoutAnyDatabaseEntry) {
    auto credentials = decide_credentials("12345:23456", UserLookup{}, 0, 0, true);
    ASSERT_TRUE(credentials) << credentials.error().message;
    EXPECT_EQ((*credentials)->uid, 12345u);
    EXPECT_EQ((*credentials)->gid, 23456u);
    EXPECT_TRUE((*credentials)->groups.empty());
}

TEST(DecideCredentials, APasswdEntryGivesThePrimaryGroupAndTheMemberships) {
    for (const char* spec : {"www-data", "33"}) {
        auto credentials = decide_credentials(spec, www_data(), 0, 0, true);
        ASSERT_TRUE(credentials) << credentials.error().message;
        EXPECT_EQ((*credentials)->uid, 33u) << spec;
        EXPECT_EQ((*credentials)->gid, 33u) << spec;
        EXPECT_EQ((*credentials)->groups, (std::vector<unsigned>{33, 4})) << spec;
        EXPECT_TRUE((*credentials)->in_passwd);
    }
}

TEST(DecideCredentials, AGroupReplacesThePrimaryGroupAndKeepsTheMemberships) {
    UserLookup lookup = www_data();
    lookup.group = 100;
    auto credentials = decide_credentials("www-data:users", lookup, 0, 0, true);
    ASSERT_TRUE(credentials) << credentials.error().message;
    EXPECT_EQ((*credentials)->gid, 100u);
    EXPECT_EQ((*credentials)->groups, (std::vector<unsigned>{100, 4}));
}

TEST(DecideCredentials, BadNumbersUnknownNamesAndEmptyPartsAreErrors) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"99999999999999999999", "uids are 0 to 4294967294, got '99999999999999999999'"},
        {"-1", "uids are 0 to 4294967294, got '-1'"},
        {"12345:-5", "gids are 0 to 4294967294, got '-5'"},
        {"12345:4294967295", "gids are 0 to 4294967294"},
        {"nobody-here", "unknown user 'nobody-here'"},
        {"12345:staff", "unknown group 'staff'"},
        {"", "expected USER[:GROUP]"},
        {":12", "expected USER[:GROUP]"},
        {"12:", "expected USER[:GROUP]"},
    };
    for (const auto& [spec, message] : cases) {
        auto credentials = decide_credentials(spec, UserLookup{}, 0, 0, true);
        ASSERT_FALSE(credentials) << spec;
        EXPECT_THAT(credentials.error().message, HasSubstr(message)) << spec;
    }
}

TEST(DecideCredentials, RootWithoutTheCapabilitiesCannotSwitchEither) {
    auto dropped = decide_credentials("12345", UserLookup{}, 0, 0, false);
    ASSERT_FALSE(dropped);
    EXPECT_THAT(dropped.error().message, HasSubstr("switching to uid 12345, gid 0 needs root"));
    auto root = decide_credentials("0:0", UserLookup{}, 0, 0, true);
    ASSERT_TRUE(root && *root) << "root switching to root still drops the supplementary groups";
}

TEST(DecideCredentials, OnlyRootMaySwitchAndAskingForTheCurrentIdentityNeedsNoSwitch) {
    auto other = decide_credentials("12345:12345", UserLookup{}, 1000, 1000, false);
    ASSERT_FALSE(other);
    EXPECT_THAT(other.error().message,
                HasSubstr("needs root (CAP_SETUID and CAP_SETGID); preforkctl runs as uid 1000, gid 1000"));
    auto same = decide_credentials("1000:1000", UserLookup{}, 1000, 1000, false);
    ASSERT_TRUE(same) << same.error().message;
    EXPECT_FALSE(*same) << "nothing to switch: setgroups would fail without root";
}
