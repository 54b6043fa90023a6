// `results:`: pcr reads the TAP a job prints or the JUnit files it writes, fails a job
// whose exit code and tests disagree, and reports the tests (console, JUnit, JSON). Real
// shells print real TAP and write real XML.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/pcr_binary.hpp"

namespace pcr::test {
namespace {


// Each case: a script printing TAP, whether the job passes, and words its line must show.
struct TapCase {
  const char* name;
  const char* tap;
  int exit_code;
  bool passes;
  const char* shows;
};

class Tap : public testing::TestWithParam<TapCase> {};

TEST_P(Tap, JobOutcomeFollowsItsTests) {
  const TapCase& c = GetParam();
  TempDir d;
  d.write("t.sh", std::string("printf '") + c.tap + "'\nexit " + std::to_string(c.exit_code) + "\n");
  auto r = run_yaml(d, "steps:\n  - name: t\n    run: sh t.sh\n    results: tap\n", {"--no-color"});
  EXPECT_EQ(r.exit_code, c.passes ? 0 : 1) << r.out << r.err;
  EXPECT_NE(r.out.find(c.shows), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Tap,
    testing::Values(
        TapCase{"pass", "1..2\\nok 1 - a\\nok 2 - b\\n", 0, true, "passed (2 tests)"},
        TapCase{"fail", "1..2\\nok 1 - a\\nnot ok 2 - b\\n  ---\\n  got: 9\\n  ...\\n", 1, false,
                "✗ b"},
        TapCase{"exit0_not_ok", "1..1\\nnot ok 1 - sneaky\\n", 0, false, "failed (1 test, 1 failed)"},
        TapCase{"skip_all", "1..0 # SKIP no database here\\n", 0, true, "- skipped: no database here"},
        TapCase{"todo", "1..2\\nok 1 - a\\nnot ok 2 - later # TODO not yet\\n", 0, true,
                "passed (2 tests, 1 todo)"},
        TapCase{"skip", "1..2\\nok 1 - a\\nok 2 - b # SKIP no gpu\\n", 0, true,
                "passed (2 tests, 1 skipped)"},
        TapCase{"bail_out", "1..3\\nok 1 - a\\nBail out! database gone\\n", 0, false,
                "bail out: database gone"},
        TapCase{"plan_mismatch", "1..5\\nok 1 - a\\nok 2 - b\\n", 0, false, "planned 5 tests, ran 2"},
        TapCase{"not_tap", "hello\\n", 0, false, "unreadable results"}),
    [](const testing::TestParamInfo<TapCase>& i) { return std::string(i.param.name); });

TEST(Results, TestsReachJUnitJsonAndSummaryMaskedAndValid) {
  TempDir d;
  d.write("a.sh", "echo 1..2; echo 'ok 1 - login with '\"$TOKEN\"; echo 'not ok 2 - logout'; echo '# "
                  "expected 200'\n");
  d.write("b.sh", "echo 1..1; echo ok 1 - health\n");
  auto r = run_yaml(d, R"(secrets: [TOKEN]
env: {TOKEN: hunter2-secret}
steps:
  - name: suite
    workers: 2
    for_each: [b.sh, a.sh]
    run: sh {items}
    results: tap
)",
                    {"--no-color", "--junit", d.file("r.xml"), "--json", d.file("e.jsonl"), "--html",
                     d.file("r.html")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("tests: 2 passed, 1 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("✗ logout"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("expected 200"), std::string::npos) << r.out;
  const std::string xml = read_file(d.file("r.xml"));
  const std::string events = read_file(d.file("e.jsonl"));
  const std::string html = read_file(d.file("r.html"));
  EXPECT_NE(html.find("<li><b>logout</b>"), std::string::npos) << html;  // its failed tests
  for (const std::string& text : {r.out, r.err, xml, events, html})
    EXPECT_EQ(text.find("hunter2-secret"), std::string::npos) << text;
  // One testsuite per job, in item order, a testcase per test.
  const auto b = xml.find("testsuite name=\"suite: b.sh\""), a = xml.find("testsuite name=\"suite: a.sh\"");
  ASSERT_NE(b, std::string::npos) << xml;
  ASSERT_NE(a, std::string::npos) << xml;
  EXPECT_LT(b, a) << xml;
  EXPECT_NE(xml.find("name=\"logout\""), std::string::npos) << xml;
  if (have("xmllint")) {
    const std::string cmd = "xmllint --noout --schema '" + std::string(PCR_SOURCE_DIR) +
                            "/tests/schema/junit.xsd' '" + d.file("r.xml") + "' 2>&1 && echo valid";
    EXPECT_NE(sh(cmd).find("valid"), std::string::npos) << sh(cmd);
  }
  int tests = 0;
  std::istringstream in(events);
  for (std::string line; std::getline(in, line);)
    if (nlohmann::json::parse(line).value("event", "") == "test") ++tests;
  EXPECT_EQ(tests, 3);
}

TEST(Results, JUnitFilesTheJobWritesAndNotOlderOnes) {
  TempDir d;
  // A report left by an earlier run: a failure that must not count now.
  d.write("reports/old.xml",
          "<testsuite name='old'><testcase name='stale'><failure message='old'/></testcase></testsuite>");
  sh("touch -d '2 hours ago' '" + d.file("reports/old.xml") + "'");
  auto ok = run_yaml(d, R"(steps:
  - name: py
    run: |
      printf '<testsuite name="s"><testcase classname="c" name="t1" time="0.5"/></testsuite>' > reports/new.xml
    results: {junit: "reports/*.xml"}
)",
                     {"--no-color"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("passed (1 test)"), std::string::npos) << ok.out;  // not the stale one
}

// A retry is not credited with the file its failed attempt wrote (it was, within a
// second), nor a run with the file of a run just before it.
TEST(Results, ARetryIsNotCreditedWithTheFileOfTheAttemptBefore) {
  TempDir d;
  auto r = run_yaml(d, R"(steps:
  - name: t
    retries: 1
    run: |
      if [ ! -e attempted ]; then
        touch attempted
        mkdir -p out && printf '<testsuite name="s"><testcase classname="c" name="t1"/></testsuite>' > out/r.xml
        exit 1
      fi
    results: {junit: "out/*.xml"}
)",
                    {"--no-color"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("no JUnit file matching out/*.xml was written by the job"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("flaky"), std::string::npos) << r.out;
  // A second run at once: the file is the first run's, still not this one's.
  auto again = run_yaml(d, "steps:\n  - name: t\n    run: \"true\"\n    results: {junit: \"out/*.xml\"}\n",
                        {"--no-color"});
  EXPECT_EQ(again.exit_code, 1) << again.out;
}

// A real JUnit writer: pytest --junitxml, one report per job, two tiny test files.
TEST(Results, PytestJUnitReportsThroughAPool) {
  if (sh("/usr/bin/python3 -c 'import pytest' 2>&1 && echo yes").find("yes") == std::string::npos)
    GTEST_SKIP() << "pytest is missing (python3-pytest; scripts/test.sh installs it)";
  TempDir d;
  d.write("test_math.py", "def test_adds():\n    assert 1 + 1 == 2\n\ndef test_multiplies():\n    assert 6 * 7 == 42\n");
  d.write("test_io.py",
          "import pytest\n\ndef test_reads():\n    assert open(__file__).read()\n\n"
          "def test_breaks():\n    assert 'expected' == 'actual', 'the parser lost a byte'\n\n"
          "@pytest.mark.skip(reason='needs a printer')\ndef test_prints():\n    pass\n");
  auto r = run_yaml(d, R"(steps:
  - name: pytest
    workers: 2
    for_each: [test_math.py, test_io.py]
    run: /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml=report-{job}.xml {items}
    results: {junit: "report-{job}.xml"}
)",
                    {"--no-color", "--junit", d.file("r.xml")});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("tests: 3 passed, 1 failed, 1 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("passed (2 tests)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("test_breaks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the parser lost a byte"), std::string::npos) << "its diagnostic: " << r.out;
  const std::string xml = read_file(d.file("r.xml"));
  EXPECT_LT(xml.find("pytest: test_math.py"), xml.find("pytest: test_io.py")) << "in item order: " << xml;
  EXPECT_NE(xml.find("name=\"test_prints\""), std::string::npos) << xml;
  if (have("xmllint")) {
    const std::string cmd = "xmllint --noout --schema '" + std::string(PCR_SOURCE_DIR) +
                            "/tests/schema/junit.xsd' '" + d.file("r.xml") + "' 2>&1 && echo valid";
    EXPECT_NE(sh(cmd).find("valid"), std::string::npos) << sh(cmd);
  }
}

TEST(Results, UnreadableOrMissingJUnitFailsTheJobWithTheReason) {
  TempDir d;
  auto broken = run_yaml(d, R"(steps:
  - name: broken
    run: printf '<testsuite><testcase name="x">' > cut.xml
    results: {junit: "cut.xml"}
)",
                         {"--no-color"});
  EXPECT_EQ(broken.exit_code, 1) << broken.out;
  EXPECT_NE(broken.out.find("unreadable results: "), std::string::npos) << broken.out;
  EXPECT_NE(broken.out.find("cut.xml"), std::string::npos) << broken.out;
  auto missing = run_yaml(d, "steps:\n  - name: none\n    run: \"true\"\n    results: {junit: \"nothing-*.xml\"}\n",
                          {"--no-color"});
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  EXPECT_NE(missing.out.find("no JUnit file matching nothing-*.xml"), std::string::npos) << missing.out;
}

TEST(Results, BadResultsValueIsALoadErrorAtItsPlace) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - name: t\n    run: \"true\"\n    results: junit\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ci.yaml:4:14: results: expected `tap`"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pcr::test

namespace pcr::test {
namespace {

// A job printing far more TAP than a job may report: refused as unreadable, and pcr's
// memory stays bounded — the stdout file is parsed as a stream, never read whole.
TEST(Results, HugeTapCostsBoundedMemory) {
  TempDir d;
  d.write("big.sh", "echo 1..2000000\nyes 'ok - a test with a name of some length' | head -n 2000000\n");
  auto r = run_yaml(d, "steps:\n  - name: big\n    run: sh big.sh\n    results: tap\n    output: hide\n",
                    {"--no-color"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("unreadable results: more than 100000 tests"), std::string::npos) << r.out;
  if (!k_sanitized) {
    EXPECT_LT(r.max_rss_kb, 100 * 1024) << "pcr's peak RSS";
  }
}

}  // namespace
}  // namespace pcr::test
