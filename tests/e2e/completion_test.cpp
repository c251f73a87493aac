// `preforkctl completion bash|zsh|fish`, driven as the shells drive it: bash's completion function with the
// words of a command line typed so far, fish's own `complete -C`, and zsh's compinit binding the script.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
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

// Writes `preforkctl completion SHELL` to `path` and checks that SHELL parses it (-n).
void write_script(const std::string& shell, const std::string& path) {
    Process print({PREFORKCTL_BIN, "completion", shell});
    ASSERT_EQ(print.wait(), 0);
    std::ofstream(path) << print.out();
    Process syntax({shell, "-n", path});
    EXPECT_EQ(syntax.wait(), 0) << shell << ": " << syntax.err();
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

// fish completes as bash does: its own `complete -C` lists what it would offer for a command line.
TEST(Completion, FishCompletesOptionsValuesAndCtlCommands) {
    if (!on_path("fish")) GTEST_SKIP() << "fish is not installed (contrib/install-deps.sh installs it)";
    TempDir dir;
    const std::string path = dir.path() + "/preforkctl.fish";
    ASSERT_NO_FATAL_FAILURE(write_script("fish", path));
    auto offers = [&](const std::string& line) {
        Process fish({"fish", "--no-config", "-c", "source " + path + "; complete -C '" + line + "'"});
        EXPECT_EQ(fish.wait(), 0) << fish.err();
        std::vector<std::string> words;
        for (const std::string& offer : lines_with(fish.out(), "")) {
            if (!offer.empty()) words.push_back(offer.substr(0, offer.find('\t')));
        }
        std::sort(words.begin(), words.end());
        return words;
    };
    EXPECT_THAT(offers("preforkctl --sock"), ElementsAre("--socket-mode"));
    EXPECT_THAT(offers("preforkctl --socket-mode "), ElementsAre("child", "reuseport", "shared"));
    EXPECT_THAT(offers("preforkctl ctl up"), ElementsAre("upgrade"));
    EXPECT_THAT(offers("preforkctl completion f"), ElementsAre("fish"));
}

// zsh: the script parses, and compinit finds it on $fpath by its #compdef line and binds it to preforkctl.
TEST(Completion, ZshLoadsTheScriptForPreforkctl) {
    if (!on_path("zsh")) GTEST_SKIP() << "zsh is not installed (contrib/install-deps.sh installs it)";
    TempDir dir;
    const std::string path = dir.path() + "/_preforkctl";
    ASSERT_NO_FATAL_FAILURE(write_script("zsh", path));
    Process bind({"zsh", "-f", "-c",
                  "fpath=(" + dir.path() + " $fpath); autoload -U compinit; compinit -u -D; "
                  "print -r -- ${_comps[preforkctl]}"});
    EXPECT_EQ(bind.wait(), 0) << bind.err();
    EXPECT_EQ(bind.out(), "_preforkctl\n") << bind.err();
}

TEST(Completion, AnUnknownShellIsAUsageError) {
    Process run({PREFORKCTL_BIN, "completion", "ksh"});
    EXPECT_EQ(run.wait(), 2);
    EXPECT_EQ(run.err(), "preforkctl: error: usage: preforkctl completion bash|zsh|fish\n");
    EXPECT_EQ(run.out(), "");
}
