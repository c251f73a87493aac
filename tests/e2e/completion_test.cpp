// `preforkctl completion bash|zsh|fish`, driven as the shells drive it: bash's completion function with the
// words of a command line typed so far, and the other two shells' own syntax check where they are installed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace e2e;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

namespace {

// What bash offers for the command line `words` (the last one is being completed), one per line, sorted.
std::vector<std::string> bash_offers(const std::vector<std::string>& words, const std::string& directory = "/") {
    std::string array;
    for (const std::string& word : words) array += " '" + word + "'";
    const std::string script = "cd '" + directory + "' && source <('" PREFORKCTL_BIN "' completion bash) && "
                               "COMP_WORDS=(" + array + ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _preforkctl"
                               "; printf '%s\\n' \"${COMPREPLY[@]}\" | sort";
    Process shell({"bash", "--norc", "-c", script});
    EXPECT_EQ(shell.wait(), 0) << shell.err();
    std::vector<std::string> offers;
    for (const std::string& line : lines_with(shell.out(), "")) {
        if (!line.empty()) offers.push_back(line);
    }
    return offers;
}

}  // namespace

TEST(Completion, BashCompletesOptionsValuesAndCtlCommands) {
    EXPECT_THAT(bash_offers({"preforkctl", "--sock"}), ElementsAre("--socket-mode"));
    EXPECT_THAT(bash_offers({"preforkctl", "--socket-mode", "re"}), ElementsAre("reuseport"));
    // --option=value: bash splits the word at '='.
    EXPECT_THAT(bash_offers({"preforkctl", "--log-format", "=", "j"}), ElementsAre("json"));
    EXPECT_THAT(bash_offers({"preforkctl", "-n", ""}), ElementsAre("auto"));
    EXPECT_THAT(bash_offers({"preforkctl", "--backoff", ""}), IsEmpty());  // only the user knows
    EXPECT_THAT(bash_offers({"preforkctl", "c"}), ElementsAre("completion", "ctl"));
    EXPECT_THAT(bash_offers({"preforkctl", "ctl", "up"}), ElementsAre("upgrade"));
    EXPECT_THAT(bash_offers({"preforkctl", "ctl", "--no"}), ElementsAre("--no-wait"));
    EXPECT_THAT(bash_offers({"preforkctl", "completion", "f"}), ElementsAre("fish"));
}

TEST(Completion, BashCompletesPathsAndTheServerCommand) {
    TempDir dir;
    ::mkdir((dir.path() + "/webroot").c_str(), 0755);
    std::ofstream(dir.path() + "/web.toml") << "workers = 2\n";
    EXPECT_THAT(bash_offers({"preforkctl", "-c", "we"}, dir.path()), ElementsAre("web.toml", "webroot"));
    EXPECT_THAT(bash_offers({"preforkctl", "--chdir", "we"}, dir.path()), ElementsAre("webroot"));
    // After --: the server command from PATH, then its arguments as files.
    const auto commands = bash_offers({"preforkctl", "-n", "2", "--", "slee"});
    EXPECT_THAT(commands, ::testing::Contains("sleep"));
    EXPECT_THAT(bash_offers({"preforkctl", "--", "cat", "web.t"}, dir.path()), ElementsAre("web.toml"));
}

TEST(Completion, ZshAndFishReadTheirScripts) {
    int checked = 0;
    for (const std::string shell : {"zsh", "fish"}) {
        if (!on_path(shell)) continue;
        TempDir dir;
        const std::string path = dir.path() + "/preforkctl." + shell;
        Process print({PREFORKCTL_BIN, "completion", shell});
        ASSERT_EQ(print.wait(), 0);
        std::ofstream(path) << print.out();
        Process check({shell, "-n", path});
        EXPECT_EQ(check.wait(), 0) << shell << ": " << check.err();
        ++checked;
    }
    if (checked == 0) GTEST_SKIP() << "neither zsh nor fish is installed";
}

TEST(Completion, AnUnknownShellIsAUsageError) {
    Process run({PREFORKCTL_BIN, "completion", "ksh"});
    EXPECT_EQ(run.wait(), 2);
    EXPECT_EQ(run.err(), "preforkctl: error: usage: preforkctl completion bash|zsh|fish\n");
    EXPECT_EQ(run.out(), "");
}
