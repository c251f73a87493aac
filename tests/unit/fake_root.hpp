#pragma once
// FakeRoot: a test fixture with a temporary directory standing in for / (fake /proc, /sys, cgroup files),
// removed after each test.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

class FakeRoot : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = std::filesystem::temp_directory_path() /
                ("preforkctl-fakeroot-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(root_);
        std::filesystem::create_directories(root_);
    }
    void TearDown() override { std::filesystem::remove_all(root_); }

    /// Writes `content` to `relative` under the fake root, creating its directories.
    void write(const std::string& relative, const std::string& content) {
        const std::filesystem::path path = root_ / relative;
        std::filesystem::create_directories(path.parent_path());
        std::ofstream(path) << content;
    }

    std::filesystem::path root_;
};
