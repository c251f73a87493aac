// The completion scripts come from the option table of --help: every option is in each, and every value a
// script offers is one the option's help names.
#include "app/completion.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "app/cli.hpp"
#include "control/protocol.hpp"

using namespace preforkctl::app;
using ::testing::HasSubstr;

TEST(Completion, EveryOfferedChoiceIsNamedInItsOptionsHelp) {
    int with_choices = 0;
    for (const OptionEntry& option : option_table()) {
        for (const std::string& choice : option.choices) {
            EXPECT_THAT(option.help, HasSubstr(choice)) << "--" << option.long_name;
        }
        with_choices += option.choices.empty() ? 0 : 1;
    }
    EXPECT_GE(with_choices, 10);
}

TEST(Completion, EveryOptionIsInEveryScript) {
    const auto options = option_table();
    ASSERT_GT(options.size(), 40u);
    for (const Shell shell : {Shell::bash, Shell::zsh, Shell::fish}) {
        const std::string script = completion_script(shell, options);
        for (const OptionEntry& option : options) {
            const std::string name = shell == Shell::fish ? "-l " + option.long_name : "--" + option.long_name;
            EXPECT_THAT(script, HasSubstr(name)) << static_cast<int>(shell);
        }
    }
}

TEST(Completion, PathsAndChoicesAreKnownByKind) {
    const OptionEntry config = describe_option("config", "c", "TOML config file", true);
    EXPECT_EQ(config.value, ValueKind::file);
    EXPECT_EQ(describe_option("chdir", "", "Working directory", true).value, ValueKind::directory);
    const OptionEntry mode = describe_option("socket-mode", "", "shared, reuseport or child", true);
    EXPECT_EQ(mode.value, ValueKind::choice);
    EXPECT_THAT(mode.choices, ::testing::ElementsAre("shared", "reuseport", "child"));
    EXPECT_EQ(describe_option("affinity", "", "Pin", false).value, ValueKind::none);
    EXPECT_EQ(describe_option("backoff", "", "Restart delay", true).value, ValueKind::word);
    // --control takes a path or one of its words.
    const OptionEntry control = describe_option("control", "", "PATH, auto or none", true);
    EXPECT_EQ(control.value, ValueKind::file);
    EXPECT_THAT(control.choices, ::testing::ElementsAre("auto", "none"));
}

TEST(Completion, EveryCtlCommandIsOneTheProtocolKnows) {
    for (const std::string& command : ctl_commands()) {
        const auto request = preforkctl::control::request_from_words({command});
        if (!request) {
            EXPECT_THAT(request.error().message, ::testing::Not(HasSubstr("unknown command"))) << command;
        }
    }
}

TEST(Completion, ShellsAreNamed) {
    EXPECT_EQ(shell_from_name("bash"), Shell::bash);
    EXPECT_EQ(shell_from_name("zsh"), Shell::zsh);
    EXPECT_EQ(shell_from_name("fish"), Shell::fish);
    EXPECT_FALSE(shell_from_name("ksh").has_value());
}
