// The command line and config file (SPEC §2, §9): errors are one clear line and nothing starts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "harness.hpp"

using namespace e2e;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {


// The man page's AsciiDoc source, where every option and metric name is written in bold: *--name*.
std::string man_page_source() {
    std::ifstream in(MAN_PAGE_SOURCE);
    std::stringstream man;
    man << in.rdbuf();
    return man.str();
}

// The rows of the README's option table, "| `-n, --workers N` | ... |".
std::string readme_option_rows() {
    std::ifstream in(README_FILE);
    std::string rows;
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("| `-")) rows += line + "\n";
    }
    return rows;
}

// Every distinct --long-option that `text` mentions.
std::set<std::string> long_options_in(const std::string& text) {
    const std::regex long_option(R"(--[a-z][a-z-]+)");
    std::set<std::string> options;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), long_option); it != std::sregex_iterator(); ++it) {
        options.insert(it->str());
    }
    return options;
}

std::string file_text(const char* path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The long options `--help` declares: the option lines ("  -n,--workers TEXT ..."), not the footer, which
// also names options of `preforkctl ctl` (--socket).
std::set<std::string> declared_long_options(const std::string& help) {
    const std::regex option_line(R"(^ +(?:-[a-zA-Z],)?--([a-z][a-z-]+))");
    std::set<std::string> options;
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) {
        std::smatch match;
        if (std::regex_search(line, match, option_line)) options.insert(match[1].str());
    }
    return options;
}

std::string write_file(const TempDir& dir, const std::string& name, const std::string& content) {
    const std::string path = dir.path() + "/" + name;
    std::ofstream(path) << content;
    return path;
}

}  // namespace

TEST(Cli, MissingCommandExits127WithOneClearLineAndStartsNothing) {
    Process run(preforkctl({"-n", "2", "--", "./no-such-server"}));
    expect_one_error_line(run, 127, "preforkctl: error: cannot execute ./no-such-server: No such file or directory");
}

TEST(Cli, NonExecutableCommandExits126) {
    TempDir dir;
    const std::string path = write_file(dir, "server.sh", "#!/bin/sh\n");
    Process run(preforkctl({"--", path}));
    expect_one_error_line(run, 126, "cannot execute " + path + ": Permission denied");
}

TEST(Cli, BadOptionValuesNameTheOptionAndExit2) {
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"-n", "zero"}, "--workers: must be 'auto' or a number from 1 to 4096, got 'zero'"},
        {{"-n", "0"}, "--workers: must be 'auto' or a number from 1 to 4096, got '0'"},
        {{"--cpus", "3-1"}, "--cpus: invalid CPU list '3-1'"},
        {{"--cpus", "4000"}, "--cpus: CPU 4000 is not available to this process"},
        {{"--backoff", "5s"}, "--backoff: expected MIN..MAX"},
        {{"--stop-timeout", "5x"}, "--stop-timeout: invalid duration '5x'"},
        {{"--stop-signal", "FOO"}, "--stop-signal: unknown signal 'FOO'"},
        {{"--restart", "sometimes"}, "--restart: must be one of always|on-failure|never, got 'sometimes'"},
        {{"-l", "nowhere"}, "--listen: invalid listen address 'nowhere'"},
        {{"-l", "127.0.0.1:99999"}, "port must be a number from 0 to 65535"},
        {{"-l", "::1:80"}, "write IPv6 addresses in brackets"},
        {{"--bogus"}, "The following argument was not expected: --bogus"},
        {{"--stop-signal", "STOP"}, "--stop-signal: SIGSTOP does not end a process by default"},
        {{"--stop-signal", "CONT"}, "--stop-signal: SIGCONT does not end a process by default"},
        {{"--stop-signal", "CHLD"}, "--stop-signal: SIGCHLD does not end a process by default"},
        {{"--restart-window", "0"}, "--restart-window: must be above 0"},
        {{"--fd-env", "einhorn", "--socket-mode", "child", "-l", "127.0.0.1:8080"},
         "--fd-env: workers bind HOST:PORT themselves in --socket-mode child"},
        {{"-n", "2..2", "-l", "127.0.0.1:0"}, "--workers: MIN must be below MAX"},
        {{"-n", "1..4"}, "--workers: MIN..MAX follows the accept queues of the listeners, and there is none"},
        {{"-n", "1..4", "--socket-mode", "child", "-l", "127.0.0.1:8080"},
         "--workers: MIN..MAX follows the accept queues of the sockets preforkctl holds"},
        {{"-n", "0..4", "--socket-mode", "reuseport", "-l", "127.0.0.1:0"},
         "--workers: 0..MAX needs --socket-mode shared"},
        {{"--max-rss", "0"}, "--max-rss: must be above 0"},
        {{"--max-rss", "1.5G"}, "--max-rss: invalid size '1.5G'"},
        {{"--max-lifetime", "0"}, "--max-lifetime: must be above 0"},
        {{"--watchdog", "soon"}, "--watchdog: invalid duration 'soon'"},
        {{"-n", "1..4", "-l", "127.0.0.1:0", "--scale-up-after", "0"}, "--scale-up-after: must be above 0"},
    };
    for (const Case& c : cases) {
        std::vector<std::string> args = c.args;
        args.insert(args.end(), {"--", PROBE_WORKER_BIN});
        Process run(preforkctl(args));
        SCOPED_TRACE(c.message);
        expect_one_error_line(run, 2, c.message);
    }
}

TEST(Cli, NoCommandIsAUsageError) {
    Process run(preforkctl({"-n", "2"}));
    expect_one_error_line(run, 2, "no command given");
}

TEST(Cli, BadTomlNamesFileLineAndColumnAndExits3) {
    TempDir dir;
    struct Case {
        std::string content;
        std::string message;
    };
    const std::vector<Case> cases = {
        {"workers = \"auto\nx = 1\n", ":1:"},
        {"workers = 2\nbogus = 1\n", ":2:1: unknown key 'bogus'"},
        {"workers = 2\naffinity = \"yes\"\n", ":2:12: 'affinity' must be true or false, not a string"},
        {"workers = \"many\"\n", ":1:11: workers: must be 'auto' or a number from 1 to 4096, got 'many'"},
        {"stop-timeout = \"soon\"\n", ":1:16: stop-timeout: invalid duration 'soon'"},
        {"workers = \"3..1\"\nlisten = \"127.0.0.1:0\"\n", ":1:11: workers: MIN must be below MAX"},
        {"max-rss = \"lots\"\n", ":1:11: max-rss: invalid size 'lots'"},
    };
    for (const Case& c : cases) {
        const std::string path = write_file(dir, "bad.toml", c.content);
        Process run(preforkctl({"-c", path, "--", PROBE_WORKER_BIN}));
        SCOPED_TRACE(c.content);
        expect_one_error_line(run, 3, path + c.message);
    }
}

TEST(Cli, ConfigFileSuppliesCommandAndTheCommandLineOverridesIt) {
    TempDir dir;
    const std::string path = write_file(dir, "ok.toml",
                                        "workers = 3\nstop-timeout = 7\nlisten = [\"127.0.0.1:0\"]\ncommand = [\"" +
                                            std::string(PROBE_WORKER_BIN) + "\", \"--flag\"]\n"
                                            "[env]\nGREETING = \"hi\"\n");
    Process from_file(preforkctl({"-c", path, "--print-plan"}));
    ASSERT_EQ(from_file.wait(), 0) << from_file.err();
    EXPECT_THAT(from_file.out(), HasSubstr("workers:      3 (set by " + path + ":1:11)"));
    EXPECT_THAT(from_file.out(), HasSubstr("SIGKILL after 7s"));
    EXPECT_THAT(from_file.out(), HasSubstr("--flag"));
    Process overridden(preforkctl({"-c", path, "-n", "1", "--print-plan"}));
    ASSERT_EQ(overridden.wait(), 0) << overridden.err();
    EXPECT_THAT(overridden.out(), HasSubstr("workers:      1 (set by --workers)"));
}

TEST(Cli, PrintPlanSaysWhichSourceDecidedTheCpuBudget) {
    Process run(preforkctl({"--print-plan", "-l", "127.0.0.1:0,name=web", "--", PROBE_WORKER_BIN, "{slot}"}));
    ASSERT_EQ(run.wait(), 0) << run.err();
    EXPECT_THAT(run.out(), HasSubstr("decided by "));
    EXPECT_THAT(run.out(), HasSubstr("listener:     fd 3  127.0.0.1:0 (port chosen by the kernel at bind)"));
    EXPECT_THAT(run.out(), HasSubstr("LISTEN_FDNAMES=web"));
    EXPECT_THAT(run.out(), HasSubstr("argv:       " + std::string(PROBE_WORKER_BIN) + " 0"));
}

// Issue 10 item 13: the plan lists the --env entries of each slot and every signal that is really forwarded.
TEST(Cli, PrintPlanListsEnvEntriesPerSlotAndEveryForwardedSignal) {
    Process run(preforkctl({"--print-plan", "-n", "2", "-e", "GREETING=hi", "--rewrite-signal", "USR2:HUP", "--",
                            PROBE_WORKER_BIN}));
    ASSERT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(lines_with(run.out(), "  env:        GREETING=hi PREFORK_SLOT=").size(), 2u) << run.out();
    EXPECT_THAT(run.out(), HasSubstr("forwarding:   USR1, USR2 as HUP, WINCH, QUIT, ALRM, PWR, URG, IO, VTALRM, PROF, "
                                     "STKFLT to each worker's process group\n"));
}

TEST(Cli, AddressInUseIsOneClearLineWithExitStatus4) {
    Process first(preforkctl({"-n", "1", "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}));
    ASSERT_TRUE(wait_until([&] { return listening_port(first.err()) != 0; })) << first.err();
    const std::string address = "127.0.0.1:" + std::to_string(listening_port(first.err()));
    Process second(preforkctl({"-n", "1", "-l", address, "--", PROBE_WORKER_BIN}));
    expect_one_error_line(second, 4, "cannot bind " + address + ": Address already in use");
}

TEST(Cli, UnbindableUnixPathIsExitStatus4) {
    Process run(preforkctl({"-n", "1", "-l", "unix:/nonexistent-dir/x.sock", "--", PROBE_WORKER_BIN}));
    expect_one_error_line(run, 4, "cannot bind unix:/nonexistent-dir/x.sock: No such file or directory");
}

// SPEC §12: a worker range must rise; a reversed or empty one is refused before any worker starts.
TEST(Cli, WorkerRangesThatDoNotRiseAreOneUsageErrorAndStartNothing) {
    for (const char* range : {"3..1", "0..0"}) {
        SCOPED_TRACE(range);
        TempDir dir;
        Process run(preforkctl({"-n", range, "-l", "127.0.0.1:0", "--", PROBE_WORKER_BIN}),
                    {{"PROBE_DIR=" + dir.path()}});
        expect_one_error_line(run, 2, "preforkctl: error: --workers: MIN must be below MAX");
        EXPECT_TRUE(read_reports(dir.path()).empty()) << "a worker started";
    }
}

TEST(Cli, PrintPlanShowsTheElasticRangeAndItsTimings) {
    Process run(preforkctl({"--print-plan", "-n", "1..4", "-l", "127.0.0.1:0", "--", "true"}));
    ASSERT_EQ(run.wait(), 0) << run.err();
    EXPECT_THAT(run.out(), HasSubstr("workers:      1 (elastic 1..4, set by --workers)\n"));
    EXPECT_THAT(run.out(), HasSubstr("elastic:      1..4 workers, one more after 1s of a non-empty accept queue, "
                                     "one fewer (the newest) after 30s of empty queues\n"));
    EXPECT_EQ(lines_with(run.out(), "slot 0:").size(), 1u) << run.out();
    EXPECT_TRUE(lines_with(run.out(), "slot 1:").empty()) << "MIN slots at start: " << run.out();
    EXPECT_EQ(run.err(), "");
}

TEST(Cli, ManPageDocumentsEveryLongOptionOfHelp) {
    Process help(preforkctl({"--help"}));
    ASSERT_EQ(help.wait(), 0);
    const std::string man = man_page_source();
    ASSERT_FALSE(man.empty());
    const std::set<std::string> options = long_options_in(help.out());
    EXPECT_GT(options.size(), 20u);
    for (const std::string& option : options) {
        EXPECT_THAT(man, HasSubstr("*" + option + "*")) << option << " is missing from the man page";
    }
}

TEST(Cli, ReadmeOptionTableListsEveryOptionOfHelp) {
    Process help(preforkctl({"--help"}));
    ASSERT_EQ(help.wait(), 0);
    // The options themselves: the first word of each option line ("  -e,--env TEXT ...  Extra ..."), not the
    // ones descriptions and the footer mention (`ctl --socket`).
    std::string declared;
    std::istringstream lines(help.out());
    for (std::string line; std::getline(lines, line);) {
        const std::size_t start = line.find_first_not_of(' ');
        if (start != std::string::npos && start > 0 && line[start] == '-') {
            declared += line.substr(start, line.find(' ', start) - start) + "\n";
        }
    }
    const std::set<std::string> listed = long_options_in(readme_option_rows());
    EXPECT_GT(long_options_in(declared).size(), 40u) << help.out();
    for (const std::string& option : long_options_in(declared)) {
        EXPECT_TRUE(listed.contains(option)) << option << " is missing from the README's option table";
    }
}

// preforkctl.toml(5) has a key heading ("*stop-timeout*::") for every long option of --help, except the options
// that are no keys, which it names in OPTIONS THAT ARE NOT KEYS.
TEST(Cli, ConfigPageDocumentsEveryKey) {
    Process help(preforkctl({"--help"}));
    ASSERT_EQ(help.wait(), 0);
    const std::string page = file_text(CONFIG_PAGE_SOURCE);
    ASSERT_FALSE(page.empty());
    const std::set<std::string> options = declared_long_options(help.out());
    EXPECT_GT(options.size(), 40u) << help.out();
    const std::set<std::string> not_keys = {"config", "help", "version"};
    for (const std::string& option : options) {
        if (not_keys.contains(option)) {
            EXPECT_THAT(page, HasSubstr("*--" + option + "*")) << "--" << option << " is not named as no key";
        } else {
            EXPECT_THAT(page, HasSubstr("\n*" + option + "*::\n")) << option << " has no key heading";
        }
    }
    EXPECT_THAT(page, HasSubstr("\n*command*::\n"));
}

// The full example of preforkctl.toml(5) is examples/preforkctl.toml: every key in it is accepted and makes a
// plan. "myserver" stands for the user's server; here it is the example server, found on PATH as the file
// expects.
TEST(Cli, ExampleConfigFileIsAcceptedAndShownInTheConfigPage) {
    TempDir dir;
    ASSERT_EQ(::symlink(HELLO_SERVER_BIN, (dir.path() + "/myserver").c_str()), 0);
    Options options;
    options.prefix = {"env", "PATH=" + dir.path() + ":" + std::getenv("PATH")};
    Process run(preforkctl({"-c", EXAMPLE_CONFIG, "--print-plan"}), options);
    ASSERT_EQ(run.wait(), 0) << run.err();
    EXPECT_EQ(run.err(), "");
    EXPECT_THAT(run.out(), HasSubstr("workers:      4 (set by " EXAMPLE_CONFIG ":"));
    EXPECT_THAT(run.out(), HasSubstr("LISTEN_FDNAMES=http"));
    EXPECT_THAT(run.out(), HasSubstr("APP_ENV=production"));

    // The page shows the same file: every line of it but the leading comment.
    const std::string page = file_text(CONFIG_PAGE_SOURCE);
    std::istringstream lines(file_text(EXAMPLE_CONFIG));
    bool header = true;
    for (std::string line; std::getline(lines, line);) {
        header = header && (line.empty() || line.starts_with("#"));
        if (!header && !line.empty()) {
            EXPECT_THAT(page, HasSubstr("\n" + line + "\n")) << "missing from the page";
        }
    }
}

// Every config file in examples/ (the server examples in examples/servers/ among them) is accepted as it is,
// read from the top of the source tree as the examples say, so that none rots in a build without the
// servers. --print-plan looks the command up: hello_server stands in for each program on PATH. The real
// runs are the integration tests (tests/integration/servers_test.cpp).
TEST(Cli, EveryExampleConfigIsAccepted) {
    const std::filesystem::path examples = std::filesystem::path(EXAMPLE_CONFIG).parent_path();
    const std::filesystem::path top = examples.parent_path();
    std::vector<std::filesystem::path> configs;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(examples)) {
        if (entry.path().extension() == ".toml") configs.push_back(entry.path());
    }
    std::sort(configs.begin(), configs.end());
    EXPECT_GE(configs.size(), 6u) << "preforkctl.toml and one per server";
    for (const auto& config : configs) {
        SCOPED_TRACE(config.string());
        std::istringstream lines(file_text(config.c_str()));
        std::string program;
        for (std::string line; program.empty() && std::getline(lines, line);) {
            if (line.starts_with("command = [\"")) program = line.substr(12, line.find('"', 12) - 12);
        }
        ASSERT_FALSE(program.empty()) << "no command = [\"PROGRAM\", ...] line";
        TempDir dir;
        ASSERT_EQ(::symlink(HELLO_SERVER_BIN, (dir.path() + "/" + program).c_str()), 0);
        Options options;
        options.prefix = {"env", "-C", top.string(), "PATH=" + dir.path() + ":" + std::getenv("PATH")};
        Process run(preforkctl({"-c", std::filesystem::relative(config, top).string(), "--print-plan"}), options);
        ASSERT_EQ(run.wait(), 0) << run.err();
        EXPECT_EQ(run.err(), "");
        EXPECT_THAT(run.out(), HasSubstr("argv:       " + program));
    }
}

TEST(Cli, ManPageDocumentsEveryLongOptionOfCtlHelp) {
    Process help(preforkctl({"ctl", "--help"}));
    ASSERT_EQ(help.wait(), 0) << help.err();
    const std::string man = man_page_source();
    ASSERT_FALSE(man.empty());
    const std::set<std::string> options = long_options_in(help.out());
    EXPECT_GE(options.size(), 6u) << help.out();  // --name, --socket, --json, --no-wait, --color, --timeout, ...
    for (const std::string& option : options) {
        EXPECT_THAT(man, HasSubstr("*" + option + "*")) << option << " of ctl is missing from the man page";
    }
}

TEST(Cli, ManPageDocumentsEveryMetricFamilyALivePreforkctlServes) {
    Process run(preforkctl({"--metrics", "127.0.0.1:0", "-n", "1", "--", PROBE_WORKER_BIN}));
    int port = 0;
    ASSERT_TRUE(wait_until([&] { return (port = metrics_port(run.err())) != 0; })) << run.err();
    const std::string metrics = http_get(port, "/metrics");
    ASSERT_FALSE(metrics.empty()) << run.err();
    // Every family has a TYPE line; a sample line starts with its family's name.
    std::set<std::string> families;
    const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) )");
    const std::regex sample_line(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ])");
    std::istringstream lines(metrics);
    for (std::string line; std::getline(lines, line);) {
        std::smatch match;
        if (std::regex_search(line, match, type_line) || std::regex_search(line, match, sample_line)) {
            families.insert(match[1].str());
        }
    }
    EXPECT_GT(families.size(), 15u) << metrics;
    const std::string man = man_page_source();
    ASSERT_FALSE(man.empty());
    for (const std::string& family : families) {
        EXPECT_THAT(man, HasSubstr("*" + family + "*")) << family << " is missing from the man page (METRICS)";
    }
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 0) << run.err();
}

TEST(Cli, VersionPrintsTheProjectVersion) {
    Process run(preforkctl({"--version"}));
    EXPECT_EQ(run.wait(), 0);
    EXPECT_THAT(run.out(), StartsWith("preforkctl 0."));
}

// man/prebuilt/ is what an install without asciidoctor gets: the pages this build made from the AsciiDoc
// sources, the dates in them aside (asciidoctor writes the source file's).
TEST(Cli, PrebuiltManPagesAreTheBuiltOnes) {
    const std::regex date(R"(\d{4}-\d{2}-\d{2})");
    int compared = 0;
    for (const std::string page : {"preforkctl.1", "preforkctl.toml.5"}) {
        const std::string built = file_text((std::string(MAN_BUILD_DIR) + "/" + page).c_str());
        if (built.empty()) continue;  // no asciidoctor in this build
        const std::string prebuilt = file_text((std::string(MAN_PREBUILT_DIR) + "/" + page).c_str());
        EXPECT_EQ(std::regex_replace(prebuilt, date, "DATE"), std::regex_replace(built, date, "DATE"))
            << "man/prebuilt/" << page << " is behind its source: run man/update-prebuilt.sh";
        ++compared;
    }
    if (compared == 0) GTEST_SKIP() << "asciidoctor did not build the man pages";
}

// AsciiDoc markup that asciidoctor kept as text shows on the page: a list continuation ("+" alone on a line)
// that does not start its line, and a constrained *bold* run right before an _italic_ one ("*name=*_NAME_"
// must be written "**name=**__NAME__"), which leaves its asterisks in the page.
TEST(Cli, ManPagesShowNoStrayMarkup) {
    for (const std::string page : {"preforkctl.1", "preforkctl.toml.5"}) {
        std::istringstream roff(file_text((std::string(MAN_PREBUILT_DIR) + "/" + page).c_str()));
        int lines = 0;
        for (std::string line; std::getline(roff, line); ++lines) {
            if (line.starts_with(".\\\"")) continue;  // a roff comment
            EXPECT_FALSE(line == "+" || line.ends_with(" +")) << page << " line " << lines + 1 << ": " << line;
            for (std::size_t at = line.find('*'); at != std::string::npos; at = line.find('*', at + 1)) {
                const bool escape = at > 0 && line[at - 1] == '\\';  // \*(Aq and the like
                const bool glob = at > 0 && line.compare(at, 2, "*/") == 0 &&
                                  std::isalnum(static_cast<unsigned char>(line[at - 1])) != 0;  // cpu*/topology
                EXPECT_TRUE(escape || glob) << page << " line " << lines + 1 << ": " << line;
            }
        }
        EXPECT_GT(lines, 100) << page;
    }
}
