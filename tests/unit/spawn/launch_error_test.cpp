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

TEST(LaunchError, ADirectoryThatCannotBeEnteredIsPermanent) {
    for (int error : {ENOENT, ENOTDIR, EACCES, ELOOP, ENAMETOOLONG}) {
        EXPECT_TRUE(is_permanent(LaunchError{LaunchStage::chdir, error})) << error;
    }
    EXPECT_FALSE(is_permanent(LaunchError{LaunchStage::chdir, ENOMEM}));
    EXPECT_FALSE(is_permanent(LaunchError{LaunchStage::chdir, EIO}));
}

TEST(LaunchError, AnIdentityOrCpuSetTheKernelRefusesIsPermanent) {
    EXPECT_TRUE(is_permanent(LaunchError{LaunchStage::identity, EPERM}));
    EXPECT_TRUE(is_permanent(LaunchError{LaunchStage::identity, EINVAL}));
    EXPECT_FALSE(is_permanent(LaunchError{LaunchStage::identity, EAGAIN})) << "RLIMIT_NPROC of the target user";
    EXPECT_TRUE(is_permanent(LaunchError{LaunchStage::affinity, EINVAL}));
    EXPECT_FALSE(is_permanent(LaunchError{LaunchStage::affinity, ESRCH}));
    EXPECT_FALSE(is_permanent(LaunchError{LaunchStage::fd_limit, EPERM}));
}
