#include <gtest/gtest.h>

#include <cerrno>

#include "spawn/launch.hpp"

using preforkctl::spawn::is_permanent;
using preforkctl::spawn::LaunchError;
using preforkctl::spawn::LaunchStage;

TEST(LaunchError, ACommandThatCannotRunIsPermanent) {
    for (int error : {ENOENT, EACCES, ENOEXEC, ENOTDIR, ELOOP, EISDIR, E2BIG}) {
        EXPECT_TRUE(is_permanent(LaunchError{LaunchStage::exec, error})) << error;
    }
}

TEST(LaunchError, AResourceShortageAtExecIsAFailedStartNotPermanent) {
    for (int error : {EAGAIN, ENOMEM, EMFILE, ENFILE, ETXTBSY}) {
        EXPECT_FALSE(is_permanent(LaunchError{LaunchStage::exec, error})) << error;
    }
}

TEST(LaunchError, ForkAndDescriptorFailuresAreFailedStarts) {
    for (LaunchStage stage : {LaunchStage::fork, LaunchStage::devnull, LaunchStage::fds}) {
        EXPECT_FALSE(is_permanent(LaunchError{stage, EAGAIN}));
    }
}
