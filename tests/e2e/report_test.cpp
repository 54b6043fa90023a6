// Reports end to end: every report from one run with passing, failing, timed-out,
// flaky, skipped and cleanup jobs, hostile output and a secret.
#include "../support/pcr_binary.hpp"
#include <pcr/util/text.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <set>
#include <sstream>

using namespace pcr::test;

namespace {

const char* k_hostile = R"(
name: hostile
secrets: [TOKEN]
env: {TOKEN: sekrit-4242}
steps:
  - name: mixed
    workers: 3
    retries: 1
    timeout: 2s
    kill_grace: 1s
    for_each: [ok, boom, slow, flaky, nasty]
    run: |
      case {items} in
        ok) echo fine ;;
        boom) echo "token is $TOKEN"; echo 'exploded <b>' >&2; exit 3 ;;
        slow) sleep 30 ;;
        flaky) if [ -e flaky.seen ]; then echo second; else touch flaky.seen; exit 1; fi ;;
        nasty) printf '<script>alert(1)</script> ]]> \001\002\033[31m \377\376 bad utf8 & "quotes"\n' ;;
      esac
  - name: never runs
    run: "true"
cleanup:
  - name: tidy
    run: echo tidied
)";

struct Reports {
  TempDir dir;
  PcrRun run;
  std::string junit, json, html;
};

Reports make_reports(std::vector<std::string> extra = {}, PcrOptions o = {}) {
  Reports r;
  std::vector<std::string> args = {"--junit", r.dir.file("junit.xml"), "--json", r.dir.file("events.jsonl"),
                                   "--html", r.dir.file("report.html"), "--log-dir", r.dir.file("logs")};
  args.insert(args.end(), extra.begin(), extra.end());
  r.run = run_yaml(r.dir, k_hostile, args, o);
  r.junit = read_file(r.dir.file("junit.xml"));
  r.json = read_file(r.dir.file("events.jsonl"));
  r.html = read_file(r.dir.file("report.html"));
  return r;
}


unsigned mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0;
}

}  // namespace

class ReportsOfOneRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { s_reports = new Reports(make_reports()); }
  static void TearDownTestSuite() { delete s_reports; }
  static Reports* s_reports;
};
Reports* ReportsOfOneRun::s_reports = nullptr;

TEST_F(ReportsOfOneRun, RunFailsAndNoSecretLeaksAnywhere) {
  const auto& r = *s_reports;
  EXPECT_EQ(r.run.exit_code, 1) << r.run.out;
  for (const auto* text : {&r.run.out, &r.junit, &r.json, &r.html}) EXPECT_EQ(text->find("sekrit"), std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator(r.dir.file("logs")))
    EXPECT_EQ(read_file(entry.path()).find("sekrit"), std::string::npos) << entry.path();
  EXPECT_NE(r.junit.find("token is ***"), std::string::npos);
}

TEST_F(ReportsOfOneRun, JUnitIsValidAgainstTheSchema) {
  const auto& r = *s_reports;
  if (!have("xmllint")) GTEST_SKIP() << "xmllint missing (scripts/setup.sh installs it)";
  std::string cmd = "xmllint --noout --schema '" + std::string(PCR_SOURCE_DIR) + "/tests/schema/junit.xsd' '" +
                    r.dir.file("junit.xml") + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << r.junit;
  EXPECT_NE(r.junit.find("<testsuite name=\"mixed\" tests=\"5\" failures=\"2\""), std::string::npos) << r.junit;
  EXPECT_NE(r.junit.find("<testsuite name=\"cleanup: tidy\""), std::string::npos);
  EXPECT_NE(r.junit.find("name=\"flaky\" time="), std::string::npos);
  EXPECT_NE(r.junit.find("status=\"flaky\""), std::string::npos);
  EXPECT_NE(r.junit.find("message=\"timed out after 2s"), std::string::npos) << r.junit;
  EXPECT_NE(r.junit.find("message=\"failed with exit code 3\""), std::string::npos);
  EXPECT_NE(r.junit.find("<skipped message=\"step skipped"), std::string::npos);  // "never runs"
  EXPECT_NE(r.junit.find("worker: "), std::string::npos);
  EXPECT_EQ(r.junit.find("]]>"), std::string::npos);
}

// Testcases are named by what they test (the item), and a retried job keeps its earlier
// attempt as Surefire writes it: flakyFailure when it passed in the end, rerunFailure not.
TEST_F(ReportsOfOneRun, JUnitNamesTestsByItemAndKeepsEarlierAttempts) {
  const auto& r = *s_reports;
  for (const char* item : {"ok", "boom", "slow", "flaky", "nasty"})
    EXPECT_NE(r.junit.find("<testcase classname=\"mixed\" name=\"" + std::string(item) + "\""), std::string::npos)
        << item << "\n" << r.junit;
  const auto flaky = r.junit.find("name=\"flaky\"");
  ASSERT_NE(flaky, std::string::npos);
  const auto flaky_end = r.junit.find("</testcase>", flaky);
  EXPECT_NE(r.junit.substr(flaky, flaky_end - flaky).find("<flakyFailure type=\"failed\" message=\"attempt 1: failed"),
            std::string::npos) << r.junit.substr(flaky, flaky_end - flaky);
  const auto boom = r.junit.find("name=\"boom\"");
  const auto boom_end = r.junit.find("</testcase>", boom);
  const std::string boom_case = r.junit.substr(boom, boom_end - boom);
  EXPECT_NE(boom_case.find("<rerunFailure"), std::string::npos) << boom_case;
  EXPECT_NE(boom_case.find("token is ***"), std::string::npos) << "the first attempt's output is kept";
  EXPECT_EQ(r.junit.find(".pcr/"), std::string::npos);
}

// job_start and job_end both say which job it is: its name, items, worker and command.
TEST_F(ReportsOfOneRun, JobEventsCarryTheJobsName) {
  const auto& r = *s_reports;
  std::set<std::string> ended;
  for (const auto& line : pcr::util::split_lines(r.json)) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] != "job_end" && j["event"] != "job_start") continue;
    ASSERT_TRUE(j.contains("name") && j.contains("items") && j.contains("command") && j.contains("project")) << line;
    if (j["event"] == "job_end" && j["step"] == "mixed") {
      ASSERT_EQ(j["items"].size(), 1u);
      EXPECT_EQ(j["name"], j["items"][0]) << line;
      ended.insert(j["name"].get<std::string>());
    }
  }
  EXPECT_EQ(ended, (std::set<std::string>{"ok", "boom", "slow", "flaky", "nasty"}));
}

TEST_F(ReportsOfOneRun, JsonEventLogIsValidLineByLine) {
  const auto& r = *s_reports;
  std::map<std::string, int> events;
  bool retried = false, flaky = false, timed_out = false;
  for (const auto& line : pcr::util::split_lines(r.json)) {
    auto j = nlohmann::json::parse(line);  // throws on a bad line
    events[j["event"].get<std::string>()]++;
    ASSERT_TRUE(j.contains("time"));
    if (j["event"] == "job_end") {
      retried = retried || j["retrying"].get<bool>();
      flaky = flaky || j["flaky"].get<bool>();
      timed_out = timed_out || j["status"] == "timed_out";
    }
  }
  EXPECT_EQ(events["run_start"], 1);
  EXPECT_EQ(events["run_end"], 1);
  EXPECT_EQ(events["step_end"], 3);  // mixed, never runs (skipped), tidy
  EXPECT_GE(events["job_end"], 7);   // 5 jobs + retries + cleanup
  EXPECT_TRUE(retried && flaky && timed_out);
}

TEST_F(ReportsOfOneRun, HtmlEscapesEverythingAndHasTheTimeline) {
  const auto& r = *s_reports;
  // One script, pcr's own (the tables' sorting); a job printing one got text.
  const auto script = r.html.find("<script");
  ASSERT_NE(script, std::string::npos);
  EXPECT_EQ(r.html.find("<script", script + 1), std::string::npos) << "job output became markup";
  EXPECT_NE(r.html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(r.html.find("id=\"timeline\""), std::string::npos);
  EXPECT_EQ(r.html.find("http://"), std::string::npos);
  EXPECT_EQ(r.html.find("https://"), std::string::npos);
  size_t bars = 0;
  for (size_t at = r.html.find("class=\"bar "); at != std::string::npos; at = r.html.find("class=\"bar ", at + 1)) ++bars;
  EXPECT_GE(bars, 7u);
}

TEST_F(ReportsOfOneRun, HtmlRendersInABrowser) {
  const auto& r = *s_reports;
  std::string browser = have("chromium") ? "chromium" : have("chromium-browser") ? "chromium-browser" : "";
  if (browser.empty()) GTEST_SKIP() << "chromium missing (scripts/setup.sh installs it)";
  std::string flags = " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
                      "--disable-component-update --disable-sync --user-data-dir='" + r.dir.file("profile") + "' ";
  std::string dom = r.dir.file("dom.html"), shot = r.dir.file("shot.png");
  ASSERT_EQ(std::system((browser + flags + "--dump-dom 'file://" + r.dir.file("report.html") + "' > '" + dom +
                         "' 2>/dev/null").c_str()), 0);
  std::string rendered = read_file(dom);
  EXPECT_NE(rendered.find("id=\"timeline\""), std::string::npos);
  EXPECT_NE(rendered.find("FAILED"), std::string::npos);
  // The bars are labelled with the jobs' names, and a timeout has a colour of its own.
  EXPECT_NE(rendered.find(">flaky</div>"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("class=\"bar timeout\""), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("<td class=\"name\">boom"), std::string::npos) << rendered;
  // The sorting script runs: the page's policy allows it by its hash (and nothing else).
  EXPECT_NE(rendered.find("data-sortable=\"1\""), std::string::npos) << "the script was blocked";
  // Each job links its log under --log-dir.
  EXPECT_NE(rendered.find("class=\"log\" href=\"file://" + r.dir.file("logs") + "/s01-mixed-j"), std::string::npos)
      << rendered;
  EXPECT_EQ(rendered.find("<script>alert"), std::string::npos);
  ASSERT_EQ(std::system((browser + flags + "--window-size=1200,900 --screenshot='" + shot + "' 'file://" +
                         r.dir.file("report.html") + "' > /dev/null 2>&1").c_str()), 0);
  ASSERT_TRUE(exists(shot));
  if (!have("identify")) GTEST_SKIP() << "ImageMagick missing: cannot count colours";
  std::string colours = r.dir.file("colours");
  ASSERT_EQ(std::system(("identify -format %k '" + shot + "' > '" + colours + "'").c_str()), 0);
  EXPECT_GT(std::stoi(read_file(colours)), 20) << "the screenshot is blank";
}

TEST_F(ReportsOfOneRun, LogDirHasAFilePerJobPrivately) {
  const auto& r = *s_reports;
  std::string logs = r.dir.file("logs");
  EXPECT_EQ(mode_of(logs), 0700u);
  EXPECT_TRUE(exists(logs + "/run.log"));
  EXPECT_EQ(read_file(logs + "/run.log").find('\x1b'), std::string::npos);
  EXPECT_NE(read_file(logs + "/run.log").find("step 1/2: mixed"), std::string::npos);
  std::string boom = logs + "/s01-mixed-j002-boom.log";
  ASSERT_TRUE(exists(boom)) << "no per-job log";
  EXPECT_EQ(mode_of(boom), 0600u);
  EXPECT_NE(read_file(boom).find("exploded <b>"), std::string::npos);
  EXPECT_TRUE(exists(logs + "/s01-mixed-j004-flaky.try2.log"));
  EXPECT_TRUE(exists(logs + "/c01-tidy-j001.log"));
  EXPECT_EQ(mode_of(r.dir.file(".pcr")), 0700u);
  EXPECT_EQ(mode_of(r.dir.file(".pcr/runs")), 0700u);
  EXPECT_EQ(mode_of(r.dir.file(".pcr/timings.json")), 0600u);
}

TEST(Reports, SpoolFolderIsPrivate) {
  TempDir d;
  PcrOptions o;
  o.env = {"TMPDIR=" + d.path()};
  // Two jobs: each one's output is spooled whole, to be shown in one piece. The spool
  // file is made when pcr reads the first byte: the job waits until it is there.
  auto r = run_yaml(d,
                    "steps:\n  - parallel: 2\n    timeout: 20s\n    run: echo x; "
                    "until [ -e \"$(echo \"$TMPDIR\"/pcr-*/*-{n}-0.log)\" ]; do sleep 0.01; done; "
                    "stat -c 'mode %a' \"$TMPDIR\"/pcr-*; stat -c 'file %a' \"$TMPDIR\"/pcr-*/*-{n}-0.log\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("mode 700"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("file 600"), std::string::npos) << r.out;
}

TEST(Reports, WrittenWhenTheRunIsInterrupted) {
  TempDir d;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    ::kill(pid, SIGINT);
  };
  auto r = run_yaml(d, "steps:\n  - run: touch started; sleep 30\n",
                    {"--junit", d.file("j.xml"), "--json", d.file("e.jsonl"), "--html", d.file("r.html")}, o);
  EXPECT_EQ(r.exit_code, 130);
  EXPECT_NE(read_file(d.file("j.xml")).find("</testsuites>"), std::string::npos);
  EXPECT_NE(read_file(d.file("e.jsonl")).find("\"run_end\""), std::string::npos);
  EXPECT_NE(read_file(d.file("r.html")).find("INTERRUPTED by SIGINT"), std::string::npos);
}

// The JSON log's notes are facts a tool can read (a kind and its fields), not only words.
TEST(Reports, JsonNotesAreStructured) {
  TempDir d;
  PcrOptions o;
  o.while_running = [&](pid_t pid) {
    ASSERT_TRUE(wait_until([&] { return exists(d.file("started")); }));
    ::kill(pid, SIGINT);
  };
  auto r = run_yaml(d, "steps:\n  - run: touch started; sleep 30\n", {"--json", d.file("e.jsonl"), "--shard", "1/2"},
                    o);
  EXPECT_EQ(r.exit_code, 130);
  std::vector<nlohmann::json> notes;
  std::istringstream in(read_file(d.file("e.jsonl")));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.value("event", "") == "note") notes.push_back(j);
  }
  ASSERT_EQ(notes.size(), 2u) << read_file(d.file("e.jsonl"));
  EXPECT_EQ(notes[0]["kind"], "shard");
  EXPECT_EQ(notes[0]["index"], 1);
  EXPECT_EQ(notes[0]["total"], 2);
  EXPECT_EQ(notes[1]["kind"], "interrupted");
  EXPECT_EQ(notes[1]["signal"], "SIGINT");
  EXPECT_EQ(notes[1]["again"], false);
  // The console words the same note.
  EXPECT_NE(r.out.find("pcr: " + notes[1]["message"].get<std::string>()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("SIGINT: stopping the running jobs"), std::string::npos) << r.out;
}

TEST(Reports, BadReportPathStopsBeforeAnythingRuns) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - run: touch ran\n", {"--junit", "/nonexistent/dir/j.xml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--junit"), std::string::npos);
  EXPECT_FALSE(exists(d.file("ran")));
  // Nothing is touched before every path was looked at: an earlier report is not
  // truncated, a --log-dir not made, by a bad path given after them.
  d.write("old.xml", "<testsuites/>\n");
  auto late = run_yaml(d, "steps:\n  - run: touch ran\n",
                       {"--log-dir", d.file("logs/new"), "--junit", d.file("old.xml"), "--html", "/nonexistent/r.html"});
  EXPECT_EQ(late.exit_code, 2);
  EXPECT_EQ(late.err, "pcr: --html: /nonexistent/r.html: No such file or directory\n");
  EXPECT_EQ(read_file(d.file("old.xml")), "<testsuites/>\n");
  EXPECT_FALSE(exists(d.file("logs")));
  EXPECT_FALSE(exists(d.file("ran")));
  auto folder = run_yaml(d, "steps:\n  - run: touch ran\n", {"--json", d.path()});
  EXPECT_EQ(folder.exit_code, 2);
  EXPECT_EQ(folder.err, "pcr: --json: " + d.path() + ": is a folder\n");
}

TEST(Folding, GitHubActionsGroupsAndAnnotates) {
  TempDir d;
  PcrOptions o;
  o.env = {"GITHUB_ACTIONS=true"};
  auto r = run_yaml(d, "steps:\n  - commands: [echo inside-a, echo inside-b; exit 2]\n", {}, o);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("::group::"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("::endgroup::"), std::string::npos);
  // Titled with the job's name (a `:` in a property is escaped as the runner reads it).
  EXPECT_NE(r.out.find("::error title=echo inside-b; exit 2::"), std::string::npos) << r.out;
  auto items = run_yaml(d, "steps:\n  - name: t\n    for_each: [\"a:1.sh\"]\n    run: \"false {items}\"\n", {}, o);
  EXPECT_NE(items.out.find("::error title=a%3A1.sh::"), std::string::npos) << items.out;
  EXPECT_LT(r.out.find("::group::"), r.out.find("inside-a\n"));
}

TEST(Folding, GitLabSections) {
  TempDir d;
  PcrOptions o;
  o.env = {"GITLAB_CI=true"};
  auto r = run_yaml(d, "steps:\n  - commands: [echo a, echo b]\n", {}, o);
  EXPECT_NE(r.out.find("section_start:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[collapsed=true]"), std::string::npos);
  EXPECT_NE(r.out.find("section_end:"), std::string::npos);
}

TEST(Folding, NoMarkersElsewhere) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - commands: [echo a, exit 1]\n");
  EXPECT_EQ(r.out.find("::group::"), std::string::npos);
  EXPECT_EQ(r.out.find("section_start"), std::string::npos);
}

TEST(FailOnFlaky, TurnsAFlakyPassIntoAFailure) {
  TempDir d;
  const std::string yaml = "steps:\n  - retries: 1\n    run: if [ -e seen ]; then true; else touch seen; exit 1; fi\n";
  EXPECT_EQ(run_yaml(d, yaml).exit_code, 0);
  std::remove(d.file("seen").c_str());
  auto r = run_yaml(d, yaml, {"--fail-on-flaky"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("a failure with --fail-on-flaky"), std::string::npos) << r.out;
}

// However tall the terminal, the status is one line that redraws in place, naming every
// running job.
TEST(Terminal, OneStatusLineNamesTheRunningJobs) {
  if (!have("script")) GTEST_SKIP() << "script(1) is missing";
  TempDir d;
  d.write("ci.yaml", "steps:\n  - name: pair\n    commands: [sleep 2.2, sleep 2.4, echo quick]\n");
  std::string cmd = "cd '" + d.path() + "' && TERM=xterm NO_COLOR=1 script -qec \"stty rows 40 cols 160; '" +
                    PCR_BINARY + "' run ci.yaml\" /dev/null > pty.out 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string out = read_file(d.file("pty.out"));
  EXPECT_NE(out.find("\r\x1b[K[step 1/1 pair] 1 of 3 jobs done, 2 running"), std::string::npos) << out;
  EXPECT_TRUE(out.find("· sleep 2.2 ") != std::string::npos || out.find("· sleep 2.4 ") != std::string::npos) << out;
  EXPECT_NE(out.find(", sleep 2."), std::string::npos) << "both running jobs named: " << out;
  EXPECT_EQ(out.find("\x1b[1A"), std::string::npos) << "a block of lines, not one line";
}

// The JUnit counts the user's tests: a worker's set-up and tear-down are no testcases, and
// a failing one is told in the suite's system-err; the document stays schema-valid.
TEST(Reports, JUnitCountsTestsNotSetUpsOrTearDowns) {
  TempDir d;
  auto r = run_yaml(d, R"(steps:
  - name: t
    workers: 2
    for_each: [a.sh, b.sh, c.sh]
    setup: echo setting up
    teardown: echo tearing down; exit 4
    run: echo testing {items}
)",
                    {"--junit", d.file("j.xml")});
  const std::string junit = read_file(d.file("j.xml"));
  EXPECT_NE(junit.find("<testsuite name=\"t\" tests=\"3\" failures=\"0\""), std::string::npos) << junit;
  EXPECT_EQ(junit.find("name=\"setup"), std::string::npos) << junit;
  EXPECT_EQ(junit.find("name=\"teardown"), std::string::npos) << junit;
  EXPECT_NE(junit.find("<system-err>teardown [n="), std::string::npos) << junit;
  EXPECT_NE(junit.find("exit code 4"), std::string::npos) << junit;
  if (!have("xmllint")) GTEST_SKIP() << "xmllint missing (scripts/setup.sh installs it)";
  const std::string cmd = "xmllint --noout --schema '" + std::string(PCR_SOURCE_DIR) + "/tests/schema/junit.xsd' '" +
                          d.file("j.xml") + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << junit;
}

// A `commands:` job's log is named by its command as written, not only its number.
TEST(Reports, LogDirNamesACommandsJobByItsCommand) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - commands: [echo lint, echo unit]\n", {"--log-dir", d.file("logs")});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(exists(d.file("logs/s01-2_commands-j001-echo_lint.log")));
  EXPECT_TRUE(exists(d.file("logs/s01-2_commands-j002-echo_unit.log")));
}
