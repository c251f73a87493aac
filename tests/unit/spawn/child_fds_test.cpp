#include "spawn/child_fds.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

using preforkctl::spawn::ChildReport;
using preforkctl::spawn::lift_report_fd;
using preforkctl::spawn::LaunchStage;

// A child whose report pipe cannot move out of the way of fds 0..N still tells the parent why it gave up,
// instead of exiting silently (which the parent would take for a successful exec).
TEST(ChildFds, AReportPipeThatCannotMoveReportsTheFailureOnItselfAndExits127) {
    GTEST_FLAG_SET(death_test_style, "fast");  // the forked child must write into this test's pipe
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    // No descriptor can be at or above INT_MAX: F_DUPFD_CLOEXEC fails with EINVAL.
    EXPECT_EXIT(lift_report_fd(pipe_fds[1], INT_MAX), ::testing::ExitedWithCode(127), "");
    ::close(pipe_fds[1]);
    ChildReport report{-1, 0};
    EXPECT_EQ(::read(pipe_fds[0], &report, sizeof report), static_cast<ssize_t>(sizeof report));
    ::close(pipe_fds[0]);
    EXPECT_EQ(report.stage, static_cast<int>(LaunchStage::fds));
    EXPECT_EQ(report.error, EINVAL);
}

TEST(ChildFds, AReportPipeAlreadyAboveTheFloorStaysWhereItIs) {
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    EXPECT_EQ(lift_report_fd(pipe_fds[1], 3), pipe_fds[1]);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
}
