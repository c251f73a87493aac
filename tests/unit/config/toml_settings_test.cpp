#include "config/toml_settings.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace preforkctl;
using namespace preforkctl::config;
using ::testing::HasSubstr;

namespace {

class TomlFile : public ::testing::Test {
protected:
    std::string write(const std::string& content) {
        std::ofstream(path_) << content;
        return path_;
    }
    void TearDown() override { std::filesystem::remove(path_); }
    std::string path_ = (std::filesystem::temp_directory_path() /
                         ("preforkctl-unit-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                          "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml"))
                            .string();
};

}  // namespace

TEST_F(TomlFile, ReadsEveryKindOfValueWithItsPosition) {
    auto settings = load_toml_settings(write(R"(workers = 4
affinity = true
stop_timeout = 5
log-overflow = "drop"
listen = [":8080", { address = "unix:/run/a.sock", name = "admin", mode = "0660" }]
command = [
  "./server",
  "--flag",
]
[env]
A = "1"
)"));
    ASSERT_TRUE(settings) << settings.error().message;
    EXPECT_EQ(settings->workers->value, "4");
    EXPECT_EQ(settings->workers->origin, path_ + ":1:11");
    EXPECT_TRUE(settings->affinity->value);
    EXPECT_EQ(settings->stop_timeout->value, "5s");
    EXPECT_EQ(settings->log_overflow->value, "drop");
    EXPECT_EQ(settings->log_overflow->origin, path_ + ":4:16");
    ASSERT_EQ(settings->listen.size(), 2u);
    EXPECT_EQ(settings->listen[1].value, "unix:/run/a.sock,mode=0660,name=admin");
    EXPECT_EQ(settings->command->value, (std::vector<std::string>{"./server", "--flag"}));
    EXPECT_EQ(settings->env.at(0).value, "A=1");
    EXPECT_EQ(settings->config_file, path_);
}

TEST_F(TomlFile, SteerIsReadWithItsPositionAndTheCommandLineOverridesIt) {
    auto settings = load_toml_settings(write("socket-mode = \"reuseport\"\nsteer = \"cpu\"\n"));
    ASSERT_TRUE(settings) << settings.error().message;
    ASSERT_TRUE(settings->steer);
    EXPECT_EQ(settings->steer->value, "cpu");
    EXPECT_EQ(settings->steer->origin, path_ + ":2:9");
    Settings command_line;
    command_line.steer = Setting<std::string>{"none", "--steer"};
    EXPECT_EQ(merge(*settings, command_line).steer->value, "none");
}

TEST_F(TomlFile, ArrayOfListenTablesIsAccepted) {
    auto settings = load_toml_settings(write("[[listen]]\naddress = \":80\"\nbacklog = 16\n[[listen]]\naddress = \":81\"\n"));
    ASSERT_TRUE(settings) << settings.error().message;
    ASSERT_EQ(settings->listen.size(), 2u);
    EXPECT_EQ(settings->listen[0].value, ":80,backlog=16");
}

TEST_F(TomlFile, UnknownKeysWrongTypesAndSyntaxErrorsNameFileLineAndColumn) {
    auto unknown = load_toml_settings(write("workers = 1\n  colour = \"red\"\n"));
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message, path_ + ":2:3: unknown key 'colour'");
    EXPECT_EQ(unknown.error().exit, ExitCode::config);

    auto wrong = load_toml_settings(write("max-restarts = \"ten\"\n"));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().message, path_ + ":1:16: 'max-restarts' must be an integer, not a string");

    auto syntax = load_toml_settings(write("workers = = 2\n"));
    ASSERT_FALSE(syntax);
    EXPECT_THAT(syntax.error().message, HasSubstr(path_ + ":1:"));

    auto command = load_toml_settings(write("command = [\"a\", 1]\n"));
    ASSERT_FALSE(command);
    EXPECT_THAT(command.error().message, HasSubstr(":1:17: 'command element' must be a string, not an integer"));

    auto listen_key = load_toml_settings(write("[[listen]]\naddress = \":80\"\nport = 1\n"));
    ASSERT_FALSE(listen_key);
    EXPECT_THAT(listen_key.error().message, HasSubstr(":3:1: unknown key 'listen.port'"));
}

TEST_F(TomlFile, AMissingFileIsAConfigError) {
    auto missing = load_toml_settings("/nonexistent/prefork.toml");
    ASSERT_FALSE(missing);
    EXPECT_THAT(missing.error().message, HasSubstr("cannot read config file /nonexistent/prefork.toml"));
    EXPECT_EQ(missing.error().exit, ExitCode::config);
}

TEST(TomlText, IsReadLikeAFileWithTheNameInOriginsAndErrors) {
    auto settings = load_toml_settings_text("workers = 4\nlisten = \":8080\"\n", "inline.toml");
    ASSERT_TRUE(settings) << settings.error().message;
    EXPECT_EQ(settings->workers->value, "4");
    EXPECT_EQ(settings->workers->origin, "inline.toml:1:11");
    EXPECT_EQ(settings->listen.at(0).value, ":8080");
    EXPECT_FALSE(settings->config_file);

    auto unknown = load_toml_settings_text("workers = 1\n  colour = \"red\"\n", "inline.toml");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message, "inline.toml:2:3: unknown key 'colour'");
    EXPECT_EQ(unknown.error().exit, ExitCode::config);

    auto syntax = load_toml_settings_text("workers = = 2\n", "inline.toml");
    ASSERT_FALSE(syntax);
    EXPECT_THAT(syntax.error().message, HasSubstr("inline.toml:1:"));
    EXPECT_EQ(syntax.error().exit, ExitCode::config);
}

TEST(MergeSettings, CommandLineValuesReplaceFileValuesAndEnvAccumulates) {
    Settings file;
    file.workers = Setting<std::string>{"4", "f:1:1"};
    file.stop_timeout = Setting<std::string>{"5s", "f:2:1"};
    file.env.push_back({"A=1", "f:3:1"});
    Settings cli;
    cli.workers = Setting<std::string>{"2", "--workers"};
    cli.env.push_back({"A=2", "--env"});
    const Settings merged = merge(file, cli);
    EXPECT_EQ(merged.workers->value, "2");
    EXPECT_EQ(merged.stop_timeout->value, "5s");
    ASSERT_EQ(merged.env.size(), 2u);
    EXPECT_EQ(merged.env[1].value, "A=2");
}

TEST_F(TomlFile, ExitListsAndSignalRewritesTakeTheOptionsSyntaxOrArrays) {
    auto settings = load_toml_settings(write(R"(success-exit = [143, "TERM"]
restart-prevent = "3,USR2"
restart_force = 0
signal-scope = "worker"
rewrite-signal = ["USR1:USR2", "WINCH:0"]
)"));
    ASSERT_TRUE(settings) << settings.error().message;
    EXPECT_EQ(settings->success_exit->value, "143,TERM");
    EXPECT_EQ(settings->success_exit->origin, path_ + ":1:16");
    EXPECT_EQ(settings->restart_prevent->value, "3,USR2");
    EXPECT_EQ(settings->restart_force->value, "0");
    EXPECT_EQ(settings->signal_scope->value, "worker");
    ASSERT_EQ(settings->rewrite_signal.size(), 2u);
    EXPECT_EQ(settings->rewrite_signal[1].value, "WINCH:0");
    EXPECT_EQ(settings->rewrite_signal[1].origin, path_ + ":5:32");
    auto bad = load_toml_settings(write("success-exit = [143, true]\n"));
    ASSERT_FALSE(bad);
    EXPECT_THAT(bad.error().message, HasSubstr(":1:22: 'success-exit element' must be an integer or a string"));
}

TEST_F(TomlFile, VerboseQuietAndPrintPlanAreKeysLikeTheirOptions) {
    auto settings = load_toml_settings(write("verbose = true\nprint-plan = true\n"));
    ASSERT_TRUE(settings) << settings.error().message;
    EXPECT_EQ(settings->verbosity, 1);
    EXPECT_TRUE(settings->print_plan);
    settings = load_toml_settings(write("verbose = 2\n"));
    ASSERT_TRUE(settings) << settings.error().message;
    EXPECT_EQ(settings->verbosity, 2);
    settings = load_toml_settings(write("quiet = true\n"));
    ASSERT_TRUE(settings) << settings.error().message;
    EXPECT_EQ(settings->verbosity, -1);
    settings = load_toml_settings(write("quiet = false\nverbose = false\n"));
    ASSERT_TRUE(settings) << settings.error().message;
    EXPECT_EQ(settings->verbosity, 0);

    Settings command_line;
    command_line.verbosity = -1;  // -q
    settings = load_toml_settings(write("verbose = true\n"));
    ASSERT_TRUE(settings);
    EXPECT_EQ(merge(*settings, command_line).verbosity, 0) << "-q on the command line offsets the file's verbose";
}

TEST_F(TomlFile, BadVerboseAndQuietValuesNameFileLineAndColumn) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"verbose = \"yes\"\n", ":1:11: 'verbose' must be a boolean or a count from 0 to 3, not a string"},
        {"verbose = 9\n", ":1:11: 'verbose' must be from 0 to 3, got 9"},
        {"quiet = 1\n", ":1:9: 'quiet' must be a boolean, not an integer"},
        {"print_plan = 1\n", ":1:14: 'print-plan' must be a boolean, not an integer"},
    };
    for (const auto& [content, message] : cases) {
        auto settings = load_toml_settings(write(content));
        ASSERT_FALSE(settings) << content;
        EXPECT_THAT(settings.error().message, HasSubstr(path_ + message)) << content;
        EXPECT_EQ(settings.error().exit, ExitCode::config);
    }
}

TEST_F(TomlFile, ElasticRecycleAndWatchdogKeysTakeTheOptionsTextOrIntegers) {
    auto settings = load_toml_settings(write(R"(workers = "1..8"
scale_up_after = 2
scale-down-after = "1m"
max-rss = "512M"
max_lifetime = "1h"
lifetime-jitter = 300
watchdog = "30s"
)"));
    ASSERT_TRUE(settings) << settings.error().message;
    EXPECT_EQ(settings->workers->value, "1..8");
    EXPECT_EQ(settings->scale_up_after->value, "2s");
    EXPECT_EQ(settings->scale_up_after->origin, path_ + ":2:18");
    EXPECT_EQ(settings->scale_down_after->value, "1m");
    EXPECT_EQ(settings->max_rss->value, "512M");
    EXPECT_EQ(settings->max_lifetime->value, "1h");
    EXPECT_EQ(settings->lifetime_jitter->value, "300s");
    EXPECT_EQ(settings->watchdog->value, "30s");
    EXPECT_EQ(load_toml_settings(write("max-rss = 1048576\n"))->max_rss->value, "1048576") << "bytes";
    auto wrong = load_toml_settings(write("watchdog = true\n"));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().message, path_ + ":1:12: 'watchdog' must be a string, not a boolean");
}

TEST(MergeSettings, ElasticRecycleAndWatchdogValuesOfTheCommandLineWin) {
    Settings file;
    file.scale_up_after = Setting<std::string>{"5s", "f:1:1"};
    file.max_rss = Setting<std::string>{"1G", "f:2:1"};
    file.watchdog = Setting<std::string>{"10s", "f:3:1"};
    Settings cli;
    cli.max_rss = Setting<std::string>{"512M", "--max-rss"};
    cli.max_lifetime = Setting<std::string>{"1h", "--max-lifetime"};
    const Settings merged = merge(file, cli);
    EXPECT_EQ(merged.scale_up_after->value, "5s");
    EXPECT_EQ(merged.max_rss->value, "512M");
    EXPECT_EQ(merged.max_lifetime->origin, "--max-lifetime");
    EXPECT_EQ(merged.watchdog->value, "10s");
}

TEST_F(TomlFile, EnvFileIsAStringOrAnArrayOfStringsEachWithItsPosition) {
    auto one = load_toml_settings(write("env-file = \"app.env\"\n"));
    ASSERT_TRUE(one) << one.error().message;
    ASSERT_EQ(one->env_file.size(), 1u);
    EXPECT_EQ(one->env_file[0].value, "app.env");
    EXPECT_EQ(one->env_file[0].origin, path_ + ":1:12");

    auto two = load_toml_settings(write("env_file = [\"base.env\",\n  \"local.env\"]\n"));
    ASSERT_TRUE(two) << two.error().message;
    ASSERT_EQ(two->env_file.size(), 2u);
    EXPECT_EQ(two->env_file[1].value, "local.env");
    EXPECT_EQ(two->env_file[1].origin, path_ + ":2:3");

    auto wrong = load_toml_settings(write("env-file = [\"a.env\", 1]\n"));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().message, path_ + ":1:22: 'env-file element' must be a string, not an integer");
    EXPECT_EQ(wrong.error().exit, ExitCode::config);
}

TEST(MergeSettings, EnvFilesOfTheCommandLineComeAfterThoseOfTheFile) {
    Settings file;
    file.env_file.push_back({"base.env", "f:1:12"});
    Settings cli;
    cli.env_file.push_back({"local.env", "--env-file"});
    const Settings merged = merge(file, cli);
    ASSERT_EQ(merged.env_file.size(), 2u);
    EXPECT_EQ(merged.env_file[0].value, "base.env");
    EXPECT_EQ(merged.env_file[1].value, "local.env");
}
