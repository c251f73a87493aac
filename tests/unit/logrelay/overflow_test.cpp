#include "logrelay/overflow.hpp"

#include <gtest/gtest.h>

using namespace preforkctl::logrelay;

TEST(OverflowGate, BlockAdmitsEveryLinePausesReadingAtTheBoundAndResumesAtHalf) {
    const OverflowGate gate(OverflowPolicy::block, 1000);
    EXPECT_TRUE(gate.admit(5000, 100)) << "block never drops: the workers wait instead";
    EXPECT_FALSE(gate.should_pause(999));
    EXPECT_TRUE(gate.should_pause(1000));
    EXPECT_FALSE(gate.may_resume(501));
    EXPECT_TRUE(gate.may_resume(500));
}

TEST(OverflowGate, DropRefusesWholeLinesPastTheBoundButNeverPausesAndAlwaysTakesALineIntoAnEmptyQueue) {
    const OverflowGate gate(OverflowPolicy::drop, 1000);
    EXPECT_TRUE(gate.admit(900, 100));
    EXPECT_FALSE(gate.admit(901, 100));
    EXPECT_TRUE(gate.admit(0, 5000)) << "a line longer than the bound still goes out, whole";
    EXPECT_FALSE(gate.should_pause(1'000'000));
}

TEST(OverflowGate, DroppedLinesAreReportedOnceTheQueueIsEmptyOrAtExitAndOnlyOnce) {
    OverflowGate gate(OverflowPolicy::drop, 1000);
    EXPECT_EQ(gate.take_report(0), 0u) << "nothing dropped, nothing to say";
    gate.count_dropped();
    gate.count_dropped();
    EXPECT_EQ(gate.take_report(10), 0u) << "still backlogged: the report waits until the output drains";
    EXPECT_EQ(gate.take_report(0), 2u);
    EXPECT_EQ(gate.take_report(0), 0u);
    gate.count_dropped();
    EXPECT_EQ(gate.take_report(10, true), 1u) << "at exit the report comes whatever is queued";
    EXPECT_EQ(gate.dropped_total(), 3u);
}
