#include <pcr/results/junit.hpp>
#include <pcr/results/results.hpp>
#include <pcr/results/tap.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

using namespace pcr::results;
using namespace std::chrono_literals;

namespace {

Results tap(std::string_view text) {
  TapParser parser;
  parser.feed(text);
  return parser.finish();
}

// The same text fed in pieces of `size` bytes.
Results tap_in_pieces(std::string_view text, size_t size) {
  TapParser parser;
  for (size_t i = 0; i < text.size(); i += size) parser.feed(text.substr(i, size));
  return parser.finish();
}

std::vector<std::string> names(const Results& r) {
  std::vector<std::string> out;
  for (const auto& t : r.tests) out.push_back(t.name);
  return out;
}

std::vector<Outcome> outcomes(const Results& r) {
  std::vector<Outcome> out;
  for (const auto& t : r.tests) out.push_back(t.outcome);
  return out;
}

using O = Outcome;

}  // namespace

TEST(Tap, PassesAndFailuresWithNumbersAndDescriptions) {
  Results r = tap("TAP version 14\n1..4\nok 1 - first\nnot ok 2 - second\nok 3\nnot ok third\n");
  EXPECT_EQ(r.unreadable, "");
  EXPECT_EQ(r.problem, "");
  EXPECT_EQ(names(r), (std::vector<std::string>{"first", "second", "3", "third"}));
  EXPECT_EQ(outcomes(r), (std::vector<O>{O::passed, O::failed, O::passed, O::failed}));
  EXPECT_EQ(r.tests[3].number, 4u);  // implied
  EXPECT_EQ(r.passed(), 2u);
  EXPECT_EQ(r.failed(), 2u);
  EXPECT_EQ(r.skipped(), 0u);
  EXPECT_FALSE(r.tests[0].time.has_value());
  EXPECT_EQ(r.tests[0].suite, "");
}

TEST(Tap, SkipAndTodoWithReasons) {
  Results r =
      tap("1..5\nok 1 - a # SKIP no db\nok 2 b # skip\nnot ok 3 - c # TODO later\n"
          "ok 4 - d # todo\nnot ok 5 - e # SKIP but it failed\n");
  EXPECT_EQ(r.problem, "");
  EXPECT_EQ(outcomes(r), (std::vector<O>{O::skipped, O::skipped, O::todo, O::todo, O::failed}));
  EXPECT_EQ(names(r), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(r.tests[0].reason, "no db");
  EXPECT_EQ(r.tests[1].reason, "");
  EXPECT_EQ(r.tests[2].reason, "later");
  EXPECT_EQ(r.tests[4].reason, "but it failed");
  EXPECT_EQ(r.failed(), 1u);  // the not-ok TODO is not a failure
  EXPECT_EQ(r.todo(), 2u);
  EXPECT_EQ(r.skipped(), 2u);
}

TEST(Tap, DirectivesInAnyCase) {
  Results r = tap(
      "ok 1 - a # Skip x\nok 2 - b # sKiPpEd: y\nnot ok 3 - c #ToDo z\nok 4 - d # other\n1..4\n");
  EXPECT_EQ(outcomes(r), (std::vector<O>{O::skipped, O::skipped, O::todo, O::passed}));
  EXPECT_EQ(r.tests[0].reason, "x");
  EXPECT_EQ(r.tests[1].reason, "y");
  EXPECT_EQ(r.tests[2].reason, "z");
  EXPECT_EQ(r.tests[3].name, "d # other");  // not a directive: part of the description
}

TEST(Tap, EscapedHashAndBackslash) {
  Results r =
      tap("1..3\nok 1 - a \\# b # SKIP why\nok 2 - c \\\\# TODO x\nok 3 - issue #12 fixed\n");
  EXPECT_EQ(names(r), (std::vector<std::string>{"a # b", "c \\", "issue #12 fixed"}));
  EXPECT_EQ(outcomes(r), (std::vector<O>{O::skipped, O::todo, O::passed}));
  EXPECT_EQ(r.tests[0].reason, "why");
}

TEST(Tap, SkipAll) {
  Results r = tap("TAP version 13\n1..0 # SKIP no database\n");
  EXPECT_TRUE(r.skip_all);
  EXPECT_EQ(r.skip_reason, "no database");
  EXPECT_EQ(r.problem, "");
  EXPECT_EQ(r.unreadable, "");
  EXPECT_TRUE(r.tests.empty());
  Results bare = tap("1..0\n");
  EXPECT_TRUE(bare.skip_all);
  EXPECT_EQ(bare.skip_reason, "");
  Results not_all = tap("1..1\nok 1\n");
  EXPECT_FALSE(not_all.skip_all);
}

TEST(Tap, BailOutStopsReading) {
  Results r = tap("1..5\nok 1\nBail out! database gone\nok 2\nnot ok 3\n");
  EXPECT_EQ(r.problem, "bail out: database gone");
  EXPECT_EQ(r.tests.size(), 1u);
  EXPECT_EQ(tap("1..2\nBail out!\n").problem, "bail out");
  EXPECT_EQ(tap("BAIL OUT! x\n").problem, "bail out: x");
}

// TAP 14: a bail out inside a subtest ends the whole run, not only the subtest.
TEST(Tap, BailOutInASubtestStopsReadingToo) {
  Results r = tap("1..3\nok 1\n# Subtest: db\n    1..2\n    ok 1\n    Bail out! no database\nok 2 - db\nok 3\n");
  EXPECT_EQ(r.problem, "bail out: no database");
  EXPECT_EQ(r.tests.size(), 1u);
  // Inside a YAML block it is only text.
  Results yaml = tap("1..1\nnot ok 1\n  ---\n  message: |\n    Bail out! quoted\n  ...\n");
  EXPECT_EQ(yaml.problem, "");
}

TEST(Tap, PlanMismatch) {
  Results r = tap("1..5\nok\nok\nok\n");
  EXPECT_EQ(r.problem, "planned 5 tests, ran 3");
  EXPECT_EQ(names(r), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(tap("1..1\nok\nok\n").problem, "planned 1 test, ran 2");
}

TEST(Tap, PlanAtTheEnd) {
  Results r = tap("ok 1 - a\nnot ok 2 - b\n1..2\n");
  EXPECT_EQ(r.problem, "");
  EXPECT_EQ(r.tests.size(), 2u);
  EXPECT_EQ(tap("ok 1\n1..1\nok 2\n").problem, "planned 1 test, ran 2; tests after the plan's end");
}

TEST(Tap, NoPlan) {
  Results r = tap("ok 1\nok 2\n");
  EXPECT_EQ(r.problem, "no plan");
  EXPECT_EQ(r.tests.size(), 2u);
}

TEST(Tap, MoreThanOnePlan) { EXPECT_EQ(tap("1..1\nok 1\n1..1\n").problem, "more than one plan"); }

TEST(Tap, DuplicateAndOutOfOrderNumbers) {
  EXPECT_EQ(tap("1..3\nok 1\nok 1\nok 2\n").problem, "test 1 appears twice");
  EXPECT_EQ(tap("1..2\nok 2\nok 1\n").problem,
            "test 2 out of order (expected 1); test 1 out of order (expected 3)");
  // Many problems: the first few, then "…".
  EXPECT_EQ(tap("1..5\nok 1\nok 1\nok 1\nok 1\nok 1\n").problem, "test 1 appears twice");
  EXPECT_EQ(tap("1..5\nok 5\nok 3\nok 9\nok 7\nok 11\n").problem,
            "test 5 out of order (expected 1); test 3 out of order (expected 6); "
            "test 9 out of order (expected 4); …");
}

TEST(Tap, DiagnosticsAndYamlGoToTheirTest) {
  Results r =
      tap("1..3\nok 1 - a\nnot ok 2 - b\n  ---\n  message: boom\n\n  got: 1\n  ...\n# after b\n"
          "ok 3 - c\n# after c\n");
  ASSERT_EQ(r.tests.size(), 3u);
  EXPECT_EQ(r.tests[0].details, "");
  EXPECT_EQ(r.tests[1].details, "  ---\n  message: boom\n\n  got: 1\n  ...\n# after b");
  EXPECT_EQ(r.tests[2].details, "# after c");
  EXPECT_EQ(r.problem, "");
}

TEST(Tap, Tap14SubtestsCountOnlyTheirSummary) {
  Results r =
      tap("TAP version 14\n# Subtest: sub\n    1..2\n    ok 1 - x\n    not ok 2 - y\n"
          "not ok 1 - sub\n  ---\n  at: here\n  ...\nok 2 - plain\n1..2\n");
  ASSERT_EQ(r.tests.size(), 2u);
  EXPECT_EQ(r.problem, "");
  EXPECT_EQ(r.tests[0].name, "sub");
  EXPECT_EQ(r.tests[0].outcome, O::failed);
  EXPECT_EQ(r.tests[0].details,
            "# Subtest: sub\n    1..2\n    ok 1 - x\n    not ok 2 - y\n  ---\n  at: here\n  ...");
  EXPECT_EQ(r.tests[1].details, "");
}

TEST(Tap, OtherLinesAreIgnored) {
  Results r =
      tap("compiling...\npragma +strict\nokay then\nok 1a\n  random indented\nnot ok\n1..5 files "
          "copied\n"
          "ok 3 - x\r\n1..3\r\n");
  EXPECT_EQ(names(r), (std::vector<std::string>{"1a", "2", "x"}));
  EXPECT_EQ(r.problem, "");
}

TEST(Tap, NotTapAtAll) {
  EXPECT_EQ(tap("hello\nworld\n").unreadable, "no TAP plan or test line in stdout");
  EXPECT_EQ(tap("").unreadable, "no TAP plan or test line in stdout");
  EXPECT_EQ(tap("TAP version 14\n").unreadable, "no TAP plan or test line in stdout");
}

TEST(Tap, BinaryInput) {
  Results r = tap(std::string_view("1..1\nok 1 - a\0b\n", 15));
  EXPECT_EQ(r.unreadable, "binary data in TAP line 2");
  EXPECT_TRUE(r.tests.empty());
  EXPECT_EQ(r.problem, "");
  // Binary noise on lines that are not TAP is ignored, like any other such line.
  std::string noise;
  for (int i = 0; i < 4096; ++i) noise += static_cast<char>((i * 7919) & 0xff);
  Results mixed = tap(noise + "\n1..1\nok 1 - fine\n");
  EXPECT_EQ(mixed.unreadable, "");
  EXPECT_EQ(names(mixed).back(), "fine");
  std::string pure;
  for (int i = 0; i < 4096; ++i) pure += static_cast<char>(128 + (i % 100));
  EXPECT_EQ(tap(pure).unreadable, "no TAP plan or test line in stdout");
}

TEST(Tap, LongLinesAreCutAndBounded) {
  std::string huge(1u << 20, 'x');
  Results r = tap("1..2\nok 1 - " + huge + "\nok 2 - after\n");
  ASSERT_EQ(r.tests.size(), 2u);
  EXPECT_LE(r.tests[0].name.size(), limits::name + 3);
  EXPECT_EQ(r.tests[0].name.substr(r.tests[0].name.size() - 3), "…");
  EXPECT_EQ(r.tests[1].name, "after");
  // 16 MiB with no newline, fed in pieces: the parser keeps only the first 64 KiB.
  TapParser parser;
  parser.feed("1..1\n");
  const std::string piece(1u << 20, 'y');
  for (int i = 0; i < 16; ++i) parser.feed(piece);
  parser.feed("\nok 1 - end\n");
  Results long_line = parser.finish();
  EXPECT_EQ(names(long_line), (std::vector<std::string>{"end"}));
  EXPECT_EQ(long_line.problem, "");
}

TEST(Tap, PathologicalLinesTakeLinearTime) {
  // Many `#` that are not directives, then many blanks: each `#` must not rescan the line.
  std::string line = "ok ";
  for (int i = 0; i < 20'000; ++i) line += "# ";
  line += std::string(40'000, ' ') + "\n";
  std::string text;
  for (int i = 0; i < 20; ++i) text += line;
  const auto start = std::chrono::steady_clock::now();
  Results r = tap(text + "1..20\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(r.tests.size(), 20u);
  EXPECT_EQ(r.problem, "");
}

TEST(Tap, DetailsAreCapped) {
  std::string text = "1..1\nnot ok 1 - a\n";
  for (int i = 0; i < 1000; ++i) text += "# " + std::string(98, 'd') + "\n";
  Results r = tap(text);
  ASSERT_EQ(r.tests.size(), 1u);
  EXPECT_LE(r.tests[0].details.size(), limits::details + 16);
  EXPECT_GE(r.tests[0].details.size(), limits::details);
  EXPECT_EQ(r.tests[0].details.substr(r.tests[0].details.size() - 9), "… (cut)");
}

TEST(Tap, TooManyTests) {
  std::string ok;
  for (size_t i = 0; i < limits::tests; ++i) ok += "ok\n";
  Results at_limit = tap(ok + "1..100000\n");
  EXPECT_EQ(at_limit.unreadable, "");
  EXPECT_EQ(at_limit.tests.size(), limits::tests);
  Results over = tap(ok + "ok\n");
  EXPECT_EQ(over.unreadable, "more than 100000 tests");
  EXPECT_TRUE(over.tests.empty());
}

TEST(Tap, PiecesAnywhereGiveTheSameResults) {
  const std::string text =
      "TAP version 14\n1..6\nok 1 - caf\xc3\xa9 \xe2\x9c\x93\nnot ok 2 - b\n  ---\n  x: 1\n  ...\n"
      "# note\r\n# Subtest: s\n    ok 1\n    1..1\nok 3 - s\nok 4 # SKIP why\nnot ok 5 # todo\n"
      "ok 5 - dup\nBail out! stop\nok 7\n";
  const Results whole = tap(text);
  EXPECT_EQ(whole.tests.size(), 6u);
  EXPECT_EQ(whole.problem, "bail out: stop; test 5 appears twice");
  for (size_t size : {1, 2, 3, 5, 7, 64}) EXPECT_EQ(tap_in_pieces(text, size), whole) << size;
  EXPECT_EQ(tap_in_pieces(std::string_view("ok 1\0\n", 6), 1).unreadable,
            "binary data in TAP line 1");
}

// --- JUnit ------------------------------------------------------------------------------

class JUnitRead : public ::testing::Test {
 protected:
  void SetUp() override {
    m_dir =
        std::filesystem::temp_directory_path() / ("pcr-results-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(m_dir);
  }
  void TearDown() override { std::filesystem::remove_all(m_dir); }

  std::string write(const std::string& name, std::string_view content) {
    const std::string path = (m_dir / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::filesystem::path m_dir;
};

TEST_F(JUnitRead, PytestStyle) {
  const std::string path = write("pytest.xml", R"(<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="0.05">
<testcase classname="tests.test_math" name="test_add" time="0.001" />
<testcase classname="tests.test_math" name="test_sub" time="0.25"><failure message="assert 1 == 2">def test_sub():
&gt;       assert 1 == 2</failure><system-out>noise</system-out></testcase>
<testcase classname="tests.test_math" name="test_skip" time="0.000"><skipped type="pytest.skip" message="not today">tests/test_math.py:9: not today</skipped></testcase>
</testsuite></testsuites>)");
  Results r = read_junit({path});
  EXPECT_EQ(r.unreadable, "");
  EXPECT_EQ(r.problem, "");
  EXPECT_EQ(names(r), (std::vector<std::string>{"test_add", "test_sub", "test_skip"}));
  EXPECT_EQ(outcomes(r), (std::vector<O>{O::passed, O::failed, O::skipped}));
  EXPECT_EQ(r.tests[1].suite, "tests.test_math");
  EXPECT_EQ(r.tests[1].classname, "tests.test_math");
  EXPECT_EQ(r.tests[1].reason, "assert 1 == 2");
  EXPECT_EQ(r.tests[1].details, "def test_sub():\n>       assert 1 == 2");
  EXPECT_EQ(r.tests[1].time, 250ms);
  EXPECT_EQ(r.tests[2].reason, "not today");
  EXPECT_EQ(r.tests[2].details, "tests/test_math.py:9: not today");
  EXPECT_EQ(r.tests[2].number, 3u);
  EXPECT_FALSE(r.skip_all);
}

TEST_F(JUnitRead, RspecStyleAcrossFiles) {
  const std::string a = write("rspec.xml", R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="rspec" tests="2" failures="1" errors="0" time="0.1">
<properties><property name="seed" value="1"/></properties>
<testcase classname="spec.models.user_spec" name="User is valid" file="./spec/models/user_spec.rb" time="0.01"></testcase>
<testcase classname="spec.models.user_spec" name="User needs a name" file="./spec/models/user_spec.rb" time="0.02"><failure message="expected true" type="RSpec::Expectations::ExpectationNotMetError"><![CDATA[Failure/Error: expect(user).to be_valid
  <tricky> & ]]></failure></testcase>
</testsuite></testsuites>)");
  const std::string b =
      write("second.xml", R"(<testsuite name="more"><testcase name="t"/></testsuite>)");
  Results r = read_junit({a, b});
  EXPECT_EQ(r.unreadable, "");
  ASSERT_EQ(r.tests.size(), 3u);
  EXPECT_EQ(r.tests[1].details, "Failure/Error: expect(user).to be_valid\n  <tricky> & ");
  EXPECT_EQ(r.tests[1].reason, "expected true");
  EXPECT_EQ(r.tests[2].suite, "more");
  EXPECT_EQ(r.tests[2].number, 1u);  // position in its own file
  EXPECT_EQ(r.failed(), 1u);
}

TEST_F(JUnitRead, NestedSuitesAndErrors) {
  const std::string path = write("nested.xml", R"(<testsuites name="all">
<testsuite name="outer"><testsuite name="inner">
<testcase name="a"><error message="segfault" type="crash">core dumped</error></testcase>
</testsuite><testcase name="b" classname="K"/><testcase name="c"><failure/><failure message="second">two</failure></testcase></testsuite>
</testsuites>)");
  Results r = read_junit({path});
  EXPECT_EQ(r.unreadable, "");
  ASSERT_EQ(r.tests.size(), 3u);
  EXPECT_EQ(r.tests[0].suite, "inner");
  EXPECT_EQ(r.tests[0].outcome, O::failed);
  EXPECT_EQ(r.tests[0].reason, "segfault");
  EXPECT_EQ(r.tests[0].details, "core dumped");
  EXPECT_EQ(r.tests[1].suite, "K");
  EXPECT_EQ(r.tests[1].classname, "K");
  EXPECT_EQ(r.tests[2].suite, "outer");
  EXPECT_EQ(r.tests[2].reason, "second");
  EXPECT_EQ(r.tests[2].details, "\ntwo");
}

TEST_F(JUnitRead, TimeAttribute) {
  const std::string path = write("time.xml", R"(<testsuite name="s">
<testcase name="a" time="1.5"/><testcase name="b" time="abc"/><testcase name="c" time="-1"/>
<testcase name="d" time="1e-3"/><testcase name="e"/><testcase name="f" time=" 2 "/>
<testcase name="g" time="1,5"/><testcase name="h" time="inf"/><testcase name="i" time="0.0004"/>
</testsuite>)");
  Results r = read_junit({path});
  ASSERT_EQ(r.tests.size(), 9u);
  EXPECT_EQ(r.tests[0].time, 1500ms);
  EXPECT_EQ(r.tests[1].time, std::nullopt);
  EXPECT_EQ(r.tests[2].time, std::nullopt);
  EXPECT_EQ(r.tests[3].time, 1ms);
  EXPECT_EQ(r.tests[4].time, std::nullopt);
  EXPECT_EQ(r.tests[5].time, 2000ms);
  EXPECT_EQ(r.tests[6].time, std::nullopt);
  EXPECT_EQ(r.tests[7].time, std::nullopt);
  EXPECT_EQ(r.tests[8].time, 0ms);
}

TEST_F(JUnitRead, MalformedAndTruncatedFilesAreUnreadableWithTheLine) {
  const std::string bad = write("bad.xml",
                                "<testsuite name=\"x\">\n<testcase name=\"a\"/>\n"
                                "<testcase name=\"b\">\n</testsuite>\n");
  const std::string good = write("good.xml", "<testsuite><testcase name=\"ok\"/></testsuite>");
  testing::internal::CaptureStderr();
  Results r = read_junit({bad, good});
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed, "");  // libxml2 says nothing on its own
  EXPECT_EQ(r.unreadable.rfind(bad + ": line 4: ", 0), 0u) << r.unreadable;
  EXPECT_EQ(r.unreadable.find('\n'), std::string::npos);
  EXPECT_EQ(names(r), (std::vector<std::string>{"ok"}));  // only the good file's

  const std::string truncated = write(
      "truncated.xml", "<testsuites>\n<testsuite name=\"s\">\n<testcase name=\"a\"/>\n<testca");
  Results t = read_junit({truncated});
  EXPECT_NE(t.unreadable.find(truncated + ": line 4: "), std::string::npos) << t.unreadable;
  EXPECT_TRUE(t.tests.empty());
}

TEST_F(JUnitRead, BrokenEncodingsAreUnreadableAndQuiet) {
  const std::vector<std::string> contents = {
      "<?xml version=\"1.0\" encoding=\"no-such-encoding\"?><testsuite/>",
      "<testsuite name=\"caf\xff\xfe\"><testcase name=\"a\"/></testsuite>",
      std::string("\xff\xfe<\0t\0e\0", 8),
      "<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?><testsuite name=\"\x1b$B\xff\"/>",
      "<testsuite xmlns:a=\"x\"><b:testcase name=\"a\"/></testsuite>",
      std::string("<testsuite>\0</testsuite>", 24),
  };
  for (size_t i = 0; i < contents.size(); ++i) {
    const std::string path = write("enc" + std::to_string(i) + ".xml", contents[i]);
    testing::internal::CaptureStderr();
    Results r = read_junit({path});
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "") << i;
    EXPECT_EQ(r.unreadable.rfind(path + ": line ", 0), 0u) << i << ": " << r.unreadable;
    EXPECT_TRUE(r.tests.empty()) << i;
  }
}

TEST_F(JUnitRead, EmptyMissingAndOtherFiles) {
  const std::string empty = write("empty.xml", "");
  EXPECT_EQ(read_junit({empty}).unreadable.rfind(empty + ": line 1: ", 0), 0u)
      << read_junit({empty}).unreadable;
  const std::string missing = (m_dir / "missing.xml").string();
  EXPECT_EQ(read_junit({missing}).unreadable, missing + ": cannot open: No such file or directory");
  EXPECT_EQ(read_junit({m_dir.string()}).unreadable, m_dir.string() + ": not a regular file");
  const std::string html = write("page.html", "<html><body/></html>");
  EXPECT_EQ(read_junit({html}).unreadable, html + ": not JUnit XML: the root element is <html>");
  EXPECT_EQ(read_junit({}).unreadable, "no JUnit XML file");
  const std::string fifo = (m_dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(read_junit({fifo}).unreadable, fifo + ": not a regular file");  // and no hang
}

TEST_F(JUnitRead, FileOverTheLimit) {
  const std::string path = write("big.xml", "<testsuite>");
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(limits::junit_file) + 1), 0);  // sparse
  EXPECT_EQ(read_junit({path}).unreadable, path + ": larger than 64 MiB");
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(limits::junit_file)), 0);
  EXPECT_EQ(read_junit({path}).unreadable.find("larger"), std::string::npos);
}

TEST_F(JUnitRead, EntityBombsAreNotExpanded) {
  std::string laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n";
  laughs += "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n";
  for (int i = 2; i <= 9; ++i) {
    laughs += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j) laughs += "&lol" + std::to_string(i - 1) + ";";
    laughs += "\">\n";
  }
  laughs += "]>\n<testsuite name=\"&lol9;\"><testcase name=\"&lol9;\">";
  laughs += "<failure message=\"&lol9;\">&lol9;</failure></testcase></testsuite>\n";
  const std::string path = write("lol.xml", laughs);
  const auto start = std::chrono::steady_clock::now();
  Results r = read_junit({path});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  size_t bytes = r.unreadable.size();
  for (const auto& t : r.tests) bytes += t.name.size() + t.details.size() + t.reason.size();
  EXPECT_LT(bytes, 4096u) << r.unreadable;
  // libxml2 refuses it; the line is the file's, not the entity's.
  EXPECT_EQ(r.unreadable, path + ": line 14: Detected an entity reference loop");
}

TEST_F(JUnitRead, ExternalEntitiesAreNotRead) {
  const std::string secret = write("secret.txt", "TOPSECRET");
  const std::string path = write(
      "xxe.xml", "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file://" + secret +
                     "\">]>\n<testsuite><testcase name=\"a\">"
                     "<failure message=\"m\">&xxe;</failure></testcase></testsuite>");
  Results r = read_junit({path});
  ASSERT_EQ(r.tests.size(), 1u) << r.unreadable;
  EXPECT_EQ(r.tests[0].details.find("TOPSECRET"), std::string::npos);
  EXPECT_EQ(r.tests[0].outcome, O::failed);
}

TEST_F(JUnitRead, DepthIsBounded) {
  std::string deep = "<testsuites>";
  for (int i = 0; i < 100; ++i) deep += "<testsuite>";
  deep += "<testcase name=\"a\"/>";
  for (int i = 0; i < 100; ++i) deep += "</testsuite>";
  deep += "</testsuites>";
  const std::string path = write("deep.xml", deep);
  EXPECT_EQ(read_junit({path}).unreadable, path + ": elements nested deeper than 64");
}

TEST_F(JUnitRead, DetailsAreCapped) {
  const std::string path =
      write("long.xml", "<testsuite><testcase name=\"a\"><failure>" + std::string(100'000, 'z') +
                            "</failure></testcase></testsuite>");
  Results r = read_junit({path});
  ASSERT_EQ(r.tests.size(), 1u);
  EXPECT_EQ(r.tests[0].details.size(), limits::details + std::string_view("… (cut)").size());
}
