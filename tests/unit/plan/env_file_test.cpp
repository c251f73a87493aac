#include "plan/env_file.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace preforkctl;
using namespace preforkctl::plan;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::vector<EnvAssignment> parsed(std::string_view text) {
    auto assignments = parse_env_file(text, "app.env");
    EXPECT_TRUE(assignments) << assignments.error().message;
    return assignments ? *assignments : std::vector<EnvAssignment>{};
}

std::string error_of(std::string_view text) {
    auto assignments = parse_env_file(text, "app.env");
    EXPECT_FALSE(assignments) << text;
    if (assignments) return "";
    EXPECT_EQ(assignments.error().exit, ExitCode::config);
    return assignments.error().message;
}

}  // namespace

TEST(ParseEnvFile, ReadsKeyValueLinesInOrderAndSkipsBlankAndCommentLines) {
    EXPECT_THAT(parsed("# settings\nA=1\n\n   \n; systemd's other comment\nB=two words\n  # indented comment\nC=\n"),
                ElementsAre(EnvAssignment{"A", "1"}, EnvAssignment{"B", "two words"}, EnvAssignment{"C", ""}));
    EXPECT_TRUE(parsed("").empty());
    EXPECT_TRUE(parsed("\n\n# only comments\n").empty());
}

TEST(ParseEnvFile, TrimsBlanksAroundTheKeyAndTheUnquotedValueButKeepsThemInside) {
    EXPECT_THAT(parsed("  KEY  =  a  b  \t\nTAB\t=\tx\n"),
                ElementsAre(EnvAssignment{"KEY", "a  b"}, EnvAssignment{"TAB", "x"}));
}

TEST(ParseEnvFile, TakesALastLineWithoutNewlineCrlfLineEndsAndAByteOrderMark) {
    EXPECT_THAT(parsed("\xEF\xBB\xBF"
                       "A=1\r\nB=2\r\nC=3"),
                ElementsAre(EnvAssignment{"A", "1"}, EnvAssignment{"B", "2"}, EnvAssignment{"C", "3"}));
}

TEST(ParseEnvFile, AnUnquotedValueIsTakenAsWrittenEqualsSignsHashesQuotesAndBackslashesIncluded) {
    EXPECT_THAT(
        parsed("URL=postgres://u@h/db?sslmode=require\nA=b # not a comment\nIT=it's\nW=C:\\path\\n\n"),
        ElementsAre(EnvAssignment{"URL", "postgres://u@h/db?sslmode=require"}, EnvAssignment{"A", "b # not a comment"},
                    EnvAssignment{"IT", "it's"}, EnvAssignment{"W", "C:\\path\\n"}));
}

TEST(ParseEnvFile, SingleQuotesTakeTheValueAsWrittenAndLoseTheQuotes) {
    EXPECT_THAT(
        parsed("A='  spaced  '\nB='a \"b\" \\n $HOME'\nC=''\n"),
        ElementsAre(EnvAssignment{"A", "  spaced  "}, EnvAssignment{"B", "a \"b\" \\n $HOME"}, EnvAssignment{"C", ""}));
}

TEST(ParseEnvFile, DoubleQuotesUnescapeWhatSystemdUnescapesAndKeepEveryOtherBackslash) {
    EXPECT_THAT(parsed(R"(A="say \"hi\""
B="back\\slash"
C="\$HOME and \`cmd\`"
D="line\nbreak \t tab"
E="it's # fine"
F="  "
)"),
                ElementsAre(EnvAssignment{"A", "say \"hi\""}, EnvAssignment{"B", "back\\slash"},
                            EnvAssignment{"C", "$HOME and `cmd`"}, EnvAssignment{"D", "line\\nbreak \\t tab"},
                            EnvAssignment{"E", "it's # fine"}, EnvAssignment{"F", "  "}));
}

TEST(ParseEnvFile, DropsAnExportBeforeTheKeyButTakesExportAsAKeyOfItsOwn) {
    EXPECT_THAT(parsed("export A=1\nexport\tB = 2\nexport=3\nexported=4\n"),
                ElementsAre(EnvAssignment{"A", "1"}, EnvAssignment{"B", "2"}, EnvAssignment{"export", "3"},
                            EnvAssignment{"exported", "4"}));
}

TEST(ParseEnvFile, KeepsEveryLineOfARepeatedKeySoThatTheLaterOneWins) {
    EXPECT_THAT(parsed("A=1\nA=2\n"), ElementsAre(EnvAssignment{"A", "1"}, EnvAssignment{"A", "2"}));
}

TEST(ParseEnvFile, ALineWithoutEqualsSignIsAnErrorNamingFileAndLineWithoutRepeatingTheLine) {
    const std::string message = error_of("# comment\nA=1\nhunter2\nB=2\n");
    EXPECT_EQ(message, "app.env:3: expected KEY=VALUE, found no '='");
    EXPECT_THAT(message, Not(HasSubstr("hunter2"))) << "the line may be a secret";
}

TEST(ParseEnvFile, AnInvalidKeyIsAnErrorNamingFileLineAndKey) {
    EXPECT_EQ(error_of("1A=x\n"),
              "app.env:1: invalid variable name '1A' (letters, digits and '_', not starting with a digit)");
    EXPECT_THAT(error_of("A=1\nMY-KEY=x\n"), HasSubstr("app.env:2: invalid variable name 'MY-KEY'"));
    EXPECT_THAT(error_of("A B=x\n"), HasSubstr("app.env:1: invalid variable name 'A B'"));
    EXPECT_THAT(error_of("=x\n"), HasSubstr("app.env:1: invalid variable name ''"));
    EXPECT_THAT(error_of("export =x\n"), HasSubstr("app.env:1: invalid variable name ''"));
    EXPECT_THAT(error_of("K\xC3\xA9Y=x\n"), HasSubstr("app.env:1: invalid variable name"));
}

TEST(ParseEnvFile, AQuoteThatDoesNotCloseOnItsLineOrTextAfterTheClosingQuoteIsAnError) {
    EXPECT_EQ(error_of("A=1\nB=\"open\nC=2\"\n"), "app.env:2: no closing \" (a quoted value ends on its line)");
    EXPECT_EQ(error_of("B='open\n"), "app.env:1: no closing ' (a quoted value ends on its line)");
    EXPECT_EQ(error_of("B=\"ends with an escaped quote\\\"\n"),
              "app.env:1: no closing \" (a quoted value ends on its line)");
    EXPECT_EQ(error_of("B=\"x\" # comment\n"), "app.env:1: only blanks may follow the closing quote of a value");
    EXPECT_EQ(error_of("B='x'y\n"), "app.env:1: only blanks may follow the closing quote of a value");
    EXPECT_THAT(parsed("B=\"x\"  \t\n"), ElementsAre(EnvAssignment{"B", "x"}));
}

TEST(ParseEnvFile, ANulByteIsAnError) {
    EXPECT_EQ(error_of(std::string_view("A=1\nB=x\0y\n", 10)),
              "app.env:2: a NUL byte cannot be part of the environment");
}
