// One hostile job through every output pcr writes: a secret in plain text, split across
// writes, on stderr, as an item and in a step name; terminal escapes (clear screen, an
// OSC title, a bell); invalid UTF-8. The secret and the raw escapes must appear nowhere:
// console in every mode, run.log, per-job logs and their file names, JUnit, JSON, HTML,
// the timings store, the plan.
#include "../support/pcr_binary.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace pcr::test;

namespace {

namespace fs = std::filesystem;

const std::string k_secret = "s3cr3tVALUE";

// Steps: one live job (a step's only job), a grouped step of three, the secret as an item.
std::string hostile_pipeline() {
  return R"Y(secrets: [TOKEN]
steps:
  - name: "live \e[2J $TOKEN"
    run: |
      echo "plain $TOKEN"
      printf 's3cr'; sleep 0.2; printf '3tVALUE split\n'
      echo "err $TOKEN" >&2
      printf 'clear\033[2Jtitle\033]0;pwned\007bell\007 colour \033[31mred\033[0m bad\377utf\n'
  - name: grouped
    parallel: 3
    run: echo "n{n} $TOKEN"; printf '\033]0;pwned\007\033[2J\n'
  - name: items
    for_each: {command: "echo s3cr3tVALUE; echo plain-item"}
    run: echo "item {items}"
)Y";
}

// Every file under `dir` whose name or content holds the secret or a raw escape that
// is not colour.
std::vector<std::string> leaks_in(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().string();
    if (name.find(k_secret) != std::string::npos) found.push_back("file name: " + name);
    if (!e.is_regular_file() || e.path().filename() == "ci.yaml") continue;
    const std::string text = read_file(name);
    if (text.find(k_secret) != std::string::npos) found.push_back("secret in " + name);
    if (text.find("\x1b[2J") != std::string::npos) found.push_back("clear screen in " + name);
    if (text.find("\x1b]0;") != std::string::npos) found.push_back("OSC title in " + name);
  }
  return found;
}

void expect_clean(const std::string& where, const std::string& text) {
  EXPECT_EQ(text.find(k_secret), std::string::npos) << where << ":\n" << text;
  EXPECT_EQ(text.find("\x1b[2J"), std::string::npos) << where;
  EXPECT_EQ(text.find("\x1b]0;"), std::string::npos) << where;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << where;
}

}  // namespace

TEST(HostileOutput, NoSecretAndNoRawEscapeInAnyOutput) {
  for (const auto* output : {"grouped", "prefixed"}) {
    for (bool colour : {false, true}) {
      SCOPED_TRACE(std::string(output) + (colour ? " colour" : ""));
      TempDir d;
      PcrOptions o;
      o.env = {"TOKEN=" + k_secret};
      if (colour) o.env.push_back("CLICOLOR_FORCE=1");
      auto r = run_yaml(d, hostile_pipeline(),
                        {"--output", output, "--log-dir", d.file("logs"), "--junit",
                         d.file("junit.xml"), "--json", d.file("events.json"), "--html",
                         d.file("report.html")},
                        o);
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
      expect_clean("stdout", r.out);
      expect_clean("stderr", r.err);
      EXPECT_NE(r.out.find("plain ***"), std::string::npos) << r.out;
      EXPECT_NE(r.out.find("*** split"), std::string::npos) << "split across writes:\n" << r.out;
      EXPECT_NE(r.out.find("err ***"), std::string::npos);
      EXPECT_NE(r.out.find("item ***"), std::string::npos) << r.out;
      EXPECT_NE(r.out.find("live \\e[2J $TOKEN"), std::string::npos) << "names shown, not obeyed";
      if (colour)
        EXPECT_NE(r.out.find("\x1b[31mred\x1b[0m"), std::string::npos) << "colour may pass:\n" << r.out;
      else
        EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "no escape at all off a terminal";
      EXPECT_TRUE(exists(d.file(".pcr/timings.json")));
      auto leaks = leaks_in(d.path());
      EXPECT_TRUE(leaks.empty()) << ::testing::PrintToString(leaks);
    }
  }
}

TEST(HostileOutput, ThePlanMasksSecretsAndShowsEscapes) {
  TempDir d;
  d.write("ci.yaml", "secrets: [TOKEN]\nsteps:\n  - name: \"deploy \\e]0;t\\a\"\n    run: echo {items}\n"
                     "    for_each: [s3cr3tVALUE, other]\n");
  PcrOptions o;
  o.env = {"TOKEN=" + k_secret};
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"check", d.file("ci.yaml")}, {"run", "--dry-run", d.file("ci.yaml")}}) {
    auto r = run_pcr(args, o);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    expect_clean(args[0], r.out);
    EXPECT_NE(r.out.find("echo ***"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("deploy \\e]0;t\\x07"), std::string::npos) << r.out;
  }
  // A secret's value typed as an argument is echoed by no error message either.
  auto r = run_pcr({"run", "--step", k_secret, d.file("ci.yaml")}, o);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no step is named '***'"), std::string::npos) << r.err;
  expect_clean("--step", r.err);
}

// A load error quotes the file: a secret's value written in it (here as a bad timeout,
// whole, and a long one cut short by the quote) never reaches stderr.
TEST(HostileOutput, LoadErrorsMaskSecrets) {
  TempDir d;
  const std::string long_secret(120, 'k');
  d.write("ci.yaml", "secrets: [TOKEN, LONG]\nenv: {TOKEN: s3cr3tVALUE, LONG: " + long_secret +
                         "}\nsteps:\n  - run: echo hi\n    timeout: s3cr3tVALUE\n  - run: echo hi\n    timeout: " +
                         long_secret + "\n");
  for (const auto& args : std::vector<std::vector<std::string>>{{"check", d.file("ci.yaml")}, {"run", d.file("ci.yaml")}}) {
    auto r = run_pcr(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("ci.yaml:5:14: "), std::string::npos) << r.err;  // still says where
    EXPECT_NE(r.err.find("***"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("s3cr3tVALUE"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("kkkk"), std::string::npos) << "a cut-short secret: " << r.err;
  }
}

// A failed live job's report shows the last 64 KiB of its output. When that cut falls
// inside a secret, the end of the secret is no secret any masker could recognise: the
// cut line is left out instead. Here the cut falls 10 bytes into a 20-byte secret.
TEST(HostileOutput, TheTailOfALongOutputHoldsNoPieceOfASecret) {
  TempDir d;
  const std::string secret = "SECRETpartONE-tenXYZ";  // its last 10 bytes: "-tenXYZ" and 3 more
  const std::string piece = secret.substr(10);
  // After the secret: 65,526 bytes of lines, so the last 65,536 start 10 bytes into it.
  d.write("after.txt", std::string(65526 - 1, 'x').insert(0, "\n").substr(0, 65526));
  d.write("ci.yaml", "secrets: [TOKEN]\nsteps:\n  - run: printf 'start\\n%s' \"$TOKEN\"; "
                     "cat after.txt; exit 1\n");
  PcrOptions o;
  o.cwd = d.path();
  o.env = {"TOKEN=" + secret};
  auto r = run_pcr({"run", "--html", "report.html", "ci.yaml"}, o);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const std::string html = read_file(d.file("report.html"));
  ASSERT_NE(html.find("xxxxxxxxxx"), std::string::npos) << "the tail is in the report";
  EXPECT_EQ(html.find(piece), std::string::npos) << "a piece of the secret";
  EXPECT_EQ(r.out.find(piece), std::string::npos) << r.out.substr(0, 2000);
}

// A job whose output ends inside an escape sequence (an OSC never terminated, a lone
// ESC) takes that sequence with it: the next job's output, and the next step's, are all
// there, in grouped and in prefixed output.
TEST(HostileOutput, AnUnfinishedEscapeEndsWithItsJob) {
  TempDir d;
  const std::string yaml = R"Y(steps:
  - name: s
    commands:
      - printf 'job1 ends\033]0;'
      - sleep 0.3; echo 'job2 line1'; echo 'job2 line2'
  - name: t
    commands:
      - printf 'lone\033'
      - sleep 0.3; printf 'a\033[31mred\n'
  - name: u
    run: echo "next step output"
)Y";
  for (const std::string style : {"grouped", "prefixed"}) {
    auto r = run_yaml(d, yaml, {"--output", style});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const char* line : {"job2 line1\n", "job2 line2\n", "next step output\n", "ared\n", "job1 ends"})
      EXPECT_NE(r.out.find(line), std::string::npos) << style << ": " << line << " lost:\n" << r.out;
    EXPECT_EQ(r.out.find("job1 ends✓"), std::string::npos) << style << ":\n" << r.out;
    expect_clean(style, r.out);
  }
}

// A secret whose value the console shows escaped or shell-quoted — a multi-line key, a
// tab, a control character, a quote — is masked in that form too: in the plan, commands,
// names, the summary. And a variable named in `secrets` is masked whichever `env:` gives
// it its value (a step's, `defaults:`).
TEST(HostileOutput, SecretsAreMaskedAsShownEscapedOrQuoted) {
  TempDir d;
  d.write("ci.yaml", R"Y(name: "pipeline ctl\x01zz"
env: {K: "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\n-----END KEY-----", T: "tab\tsecret", Q: "sec'ret val", C: "ctl\x01zz"}
secrets: [K, T, Q, C, STEPTOK, DEFTOK]
defaults:
  env: {DEFTOK: defaults-value-42}
steps:
  - name: items
    for_each: {list: ["-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\n-----END KEY-----", "tab\tsecret", "sec'ret val"]}
    run: test -n {items}
  - name: "step ctl\x01zz"
    env: {STEPTOK: step-value-42}
    run: echo "tok=$STEPTOK def=$DEFTOK"
)Y");
  for (const auto& args : std::vector<std::vector<std::string>>{{"check", d.file("ci.yaml")},
                                                                {"run", "--log-dir", d.file("logs"), d.file("ci.yaml")}}) {
    auto r = run_pcr(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const char* shown : {"MIIBOgIBAAJBAKj34", "tab\\tsecret", "sec'\\''ret", "ctl\\x01zz", "step-value-42",
                              "defaults-value-42"})
      EXPECT_EQ(r.out.find(shown), std::string::npos) << args[0] << " shows " << shown << ":\n" << r.out;
  }
  for (const auto& e : fs::recursive_directory_iterator(d.file("logs"))) {
    const std::string text = read_file(e.path().string());
    for (const char* shown : {"MIIBOgIBAAJBAKj34", "tab\\tsecret", "sec'\\''ret", "ctl\\x01zz", "step-value-42"})
      EXPECT_EQ(text.find(shown), std::string::npos) << e.path() << " shows " << shown;
  }
}

// A captured value is known only during the run: naming it a secret is refused at load,
// where it is written, rather than left unmasked.
TEST(HostileOutput, ACapturedValueCannotBeASecret) {
  TempDir d;
  d.write("ci.yaml", "secrets: [CAPS]\nsteps:\n  - run: echo value\n    capture: CAPS\n  - run: echo \"$CAPS\"\n");
  auto r = run_pcr({"run", d.file("ci.yaml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ci.yaml:4:14: capture: CAPS is named in `secrets`"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("value"), std::string::npos) << "nothing runs";
}

// The summary lays out masked names: a secret in a step's name does not give away its
// length through the padding of the column that follows.
TEST(HostileOutput, TheSummaryColumnsDoNotTellASecretsLength) {
  TempDir d;
  PcrOptions o;
  o.env = {"TOKEN=p@ss:word-of-some-length"};
  auto r = run_yaml(d, "secrets: [TOKEN]\nsteps:\n  - name: \"deploy p@ss:word-of-some-length\"\n    run: 'true'\n"
                       "  - name: build\n    run: 'true'\n", {"--no-color"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto summary = r.out.find("━━ summary");
  ASSERT_NE(summary, std::string::npos) << r.out;
  const auto deploy = r.out.find("✓ deploy ***", summary), build = r.out.find("✓ build", summary);
  ASSERT_NE(deploy, std::string::npos) << r.out.substr(summary);
  ASSERT_NE(build, std::string::npos) << r.out.substr(summary);
  EXPECT_EQ(r.out.find("passed", deploy) - deploy, r.out.find("passed", build) - build) << r.out.substr(summary);
}

// Names and commands are cut to fit a line ("…"); a cut that falls inside a secret leaves
// no beginning of it (4 bytes or more) on the console: banners, job lines, the summary,
// the slowest jobs. The secret starts at every offset of the cut here.
TEST(HostileOutput, ACutNameOrCommandShowsNoBeginningOfASecret) {
  TempDir d;
  const std::string secret = "p@ss:word-of-some-length-xyz-1234567890-abcdefghijklmnop";
  std::string yaml = "secrets: [TOKEN]\nsteps:\n";
  for (int n = 1; n <= 130; n += 3) {
    const std::string name = std::string(static_cast<std::size_t>(n), 'x') + " " + secret;
    yaml += "  - name: \"" + name + "\"\n    for_each: [\"" + name + "\"]\n    run: echo {items}\n";
  }
  PcrOptions o;
  o.env = {"TOKEN=" + secret};
  auto r = run_yaml(d, yaml, {"--no-color"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("slowest jobs:"), std::string::npos);
  EXPECT_EQ(r.out.find("p@ss"), std::string::npos) << r.out;
}

// --output prefixed shows a line longer than 64 KiB in tagged pieces of 64 KiB, cut where
// the line alone decides (not where the job's writes happened to be read).
TEST(PrefixedOutput, ALongLineIsCutIntoFixedPieces) {
  TempDir d;
  auto r = run_yaml(d, R"Y(steps:
  - name: s
    commands:
      - "head -c 70000 /dev/zero | tr '\\0' x; sleep 0.3; echo yyyyyyyyyy"
      - "true"
)Y",
                    {"--output", "prefixed", "--no-color"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // (Other lines, such as job 2's result, may come between the two pieces.)
  // The tag is the job's name (its command as written, cut to 40 columns).
  const auto first = r.out.find("] " + std::string(65536, 'x') + "\n");
  ASSERT_NE(first, std::string::npos) << r.out.size();
  const std::string tag = r.out.substr(r.out.rfind('\n', first) + 1, first + 2 - r.out.rfind('\n', first) - 1);
  EXPECT_EQ(tag.rfind("[head -c 70000", 0), 0u) << tag;
  EXPECT_NE(r.out.find("\n" + tag + std::string(70000 - 65536, 'x') + "yyyyyyyyyy\n", first), std::string::npos)
      << r.out.size();
}

// On a terminal a job's colour passes, and ends with its output: pcr's next line is not
// drawn in it. An ESC before a control character hides neither.
TEST(HostileOutput, AJobsColourEndsWithItsOutput) {
  TempDir d;
  PcrOptions o;
  o.env = {"CLICOLOR_FORCE=1"};
  auto r = run_yaml(d, "steps:\n  - name: s\n    parallel: 2\n    run: printf '\\033[41mbg \\033[1mbold'; echo x; printf 'a\\033\\034b\\n'\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\x1b[41mbg \x1b[1mboldx\na\\x1cb\n\x1b[0m"), std::string::npos) << r.out;
}
