#include <gtest/gtest.h>

#include "net/hangup_watch.hpp"
#include "net/listeners.hpp"

using preforkctl::net::decode;
using preforkctl::net::encode;
using preforkctl::net::rearm_action;
using preforkctl::net::RearmAction;
using preforkctl::net::SocketKey;

TEST(Rearm, ATcpSocketOutOfListenIsBoundAgainAndListenedOn) {
    EXPECT_EQ(rearm_action(false, false, true), RearmAction::bind_and_listen);
    // Found by the check at a worker's exit, without a hang-up reported first.
    EXPECT_EQ(rearm_action(false, false, false), RearmAction::bind_and_listen);
}

TEST(Rearm, ATcpSocketThatStillListensIsLeftAlone) {
    EXPECT_EQ(rearm_action(false, true, false), RearmAction::none);
    EXPECT_EQ(rearm_action(false, true, true), RearmAction::none);
}

// A shut-down unix socket still says it accepts (SO_ACCEPTCONN) but refuses every connection for good.
TEST(Rearm, AHungUpUnixSocketCannotBeRearmedAndAListeningOneNeedsNothing) {
    EXPECT_EQ(rearm_action(true, true, true), RearmAction::impossible);
    EXPECT_EQ(rearm_action(true, true, false), RearmAction::none);
}

TEST(HangupWatch, KeysOfSharedAndPerSlotSocketsSurviveTheEpollDataWord) {
    for (const SocketKey key : {SocketKey{-1, 0}, SocketKey{-1, 7}, SocketKey{0, 0}, SocketKey{5, 2},
                                SocketKey{100000, 63}}) {
        EXPECT_EQ(decode(encode(key)), key) << key.slot << "/" << key.index;
    }
    EXPECT_NE(encode(SocketKey{-1, 0}), encode(SocketKey{0, 0}));
}
