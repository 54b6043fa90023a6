// Hostile and generated pipeline files: every one is a clear load error at file:line:column
// (exit 2, nothing runs) or a plan, never a crash; in bounded time and memory.
#include "../support/pcr_binary.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>

using namespace pcr::test;
namespace fs = std::filesystem;

namespace {

constexpr long k_max_rss_kb = 100 * 1024;

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// `pcr check` on `yaml`: exit 2 and, first on stderr, "ci.yaml:LINE:COL: " + fragment.
PcrRun check_refuses(const std::string& yaml, int line, int column, const std::string& fragment) {
  TempDir d;
  d.write("ci.yaml", yaml);
  PcrOptions o;
  o.cwd = d.path();
  o.timeout_s = 30;
  auto r = run_pcr({"check", d.file("ci.yaml")}, o);
  EXPECT_EQ(r.exit_code, 2) << r.err.substr(0, 2000);
  EXPECT_EQ(r.signal, 0);
  const std::string where = d.file("ci.yaml") + ":" + std::to_string(line) + ":" +
                            std::to_string(column) + ": ";
  EXPECT_EQ(r.err.rfind(where, 0), 0u) << r.err.substr(0, 2000);
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err.substr(0, 2000);
  EXPECT_LT(r.err.size(), 4096u) << "an error message quotes at most a line of the value";
  EXPECT_TRUE(r.out.empty()) << "nothing planned";
  EXPECT_LT(r.seconds, 10.0);
  if (!k_sanitized) {
    EXPECT_LT(r.max_rss_kb, k_max_rss_kb);
  }
  return r;
}

}  // namespace

TEST(Hostile, LongExpectIsMatchedWithoutRecursion) {
  // std::regex overflowed the stack from about 87,000 characters.
  check_refuses("steps:\n  - run: a\n    expect: \"" + repeat("(", 100'000) + "\"\n", 3, 13,
                "expect: 100000 bytes, more than the 10 KiB a pattern may have");
  check_refuses("steps:\n  - run: a\n    expect: \"" + repeat("(", 10'000) + "\"\n", 3, 13,
                "expect: not a regular expression pcr can match in linear time");
  TempDir d;
  const std::string long_literal = repeat("ab", 5'000);
  auto r = run_yaml(d, "steps:\n  - run: echo x" + long_literal + "\n    expect: '" +
                           long_literal + "$'\n");
  EXPECT_EQ(r.exit_code, 0) << r.err.substr(0, 500);
  EXPECT_NE(r.out.find("PASSED"), std::string::npos);
}

TEST(Hostile, ExpectWithBackreferenceOrLookaroundIsALoadError) {
  check_refuses("steps:\n  - run: a\n    expect: '(a)\\1'\n", 3, 13, "no backreferences");
  check_refuses("steps:\n  - run: a\n    expect: 'x(?=y)'\n", 3, 13, "or lookaround");
}

TEST(Hostile, LongNamesAreCheckedWithoutRecursion) {
  check_refuses("secrets: ['1" + repeat("A", 30'000) + "']\nsteps:\n  - run: a\n", 1, 11,
                "is not a variable name");
  check_refuses("hosts:\n  - name: '-" + repeat("h", 50'000) +
                    "'\n    docker: unix:///x.sock\nsteps:\n  - run: a\n",
                2, 11, "host name '-hhh");
}

TEST(Hostile, CountsAreBounded) {
  check_refuses("steps:\n  - run: a\n    parallel: 1000000000\n", 3, 15,
                "parallel: 1000000000 is more than pcr takes (at most 10000)");
  check_refuses("steps:\n  - run: a\n    parallel: 10000000\n", 3, 15, "at most 10000");
  check_refuses("steps:\n  - run: a {items}\n    for_each: [x]\n    groups: 1000000000\n", 4,
                13, "groups: 1000000000 is more than pcr takes");
  check_refuses("steps:\n  - run: a {items}\n    for_each: [x]\n    batch: 100000000\n", 4, 12,
                "batch: 100000000 is more than pcr takes");
  check_refuses("steps:\n  - run: a {items}\n    for_each: [x]\n    workers: 5000\n", 4, 14,
                "workers: 5000 is more than pcr takes (at most 1000)");
  check_refuses("steps:\n  - run: a\n    retries: 99999999999999999999999\n", 3, 14,
                "retries: expected a whole number");
  check_refuses("steps:\n  - run: a {items}\n    for_each: [" + repeat("x,", 100'000) + "x]\n",
                3, 15, "100001 items, more than the 100000 one step takes");
}

TEST(Hostile, AliasAmplificationIsRefused) {
  // A 106 KB file whose one 100 KB string is aliased 2,000 times: 200 MB once expanded.
  std::string yaml = "x: &big '" + repeat("a", 100'000) + "'\nsteps:\n";
  for (int i = 0; i < 2000; ++i) yaml += "  - *big\n";
  check_refuses(yaml, 1, 4, "more than 32 MiB of text, counting each YAML alias");
  // Billion laughs: each level doubles ten times what the one before holds.
  std::string laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    laughs += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) laughs += std::string(i ? ", " : "") + "*" + char(c - 1);
    laughs += "]\n";
  }
  laughs += "steps: [a]\n";
  check_refuses(laughs, 1, 4, "more than 1000000 values, counting each YAML alias");
  // An anchor that names itself is a cycle: refused at the same bound, in bounded memory
  // (each visit used to push its 100 children again; the walk's stack reached gigabytes).
  std::string cycle = "a: &a [";
  for (int i = 0; i < 100; ++i) cycle += std::to_string(i) + ", ";
  cycle += "*a]\nsteps: [a]\n";
  auto r = check_refuses(cycle, 1, 4, "an alias inside the value it names never ends");
  EXPECT_LT(r.max_rss_kb, 512 * 1024) << "the walk's memory is bounded (it was over 2 GiB)";
}

TEST(Hostile, SizeAndDepthAreBounded) {
  check_refuses("steps:\n  - run: a\n" + repeat("# padding padding padding\n", 400'000), 1, 1,
                "more than the 8 MiB a pipeline file may have");
  check_refuses("steps:\n  - run: '" + repeat("a", 2u << 20) + "'\n", 2, 10,
                "run: 2097152 bytes, more than the 1 MiB one value may have");
  check_refuses("steps: " + repeat("[", 100'000) + "\n", 2, 1,
                "nested more than 500 levels deep");
}

// A pipeline "file" that never ends (a device, a FIFO fed forever) or a huge one is
// refused after reading one byte past the bound, not read whole first.
TEST(Hostile, AFileThatNeverEndsIsRefusedInBoundedMemory) {
  for (const std::string file : {"/dev/zero", "/dev/urandom"}) {
    PcrOptions o;
    o.timeout_s = 30;
    auto r = run_pcr({"check", file}, o);
    EXPECT_EQ(r.exit_code, 2) << file << ": " << r.err.substr(0, 500);
    EXPECT_EQ(r.err.rfind(file + ":1:1: the file has more than the 8 MiB a pipeline file may have", 0), 0u)
        << r.err.substr(0, 500);
    if (!k_sanitized) {
      EXPECT_LT(r.max_rss_kb, k_max_rss_kb) << file;
    }
  }
  TempDir d;
  d.write("ci.yaml", "steps:\n  - run: touch ran\n" + repeat("# padding padding padding\n", 4'000'000));
  PcrOptions o;
  o.cwd = d.path();
  auto r = run_pcr({"run", d.file("ci.yaml")}, o);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(":1:1: the file has 104000026 bytes, more than the 8 MiB"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(d.file("ran")));
  if (!k_sanitized) {
    EXPECT_LT(r.max_rss_kb, k_max_rss_kb) << "a 100 MB file is not read whole";
  }
}

// What the parser would silently drop or take is refused: a key given twice (YAML
// forbids it; the first was taken), a second document, an environment value no job
// could start with (every job, cleanup too, failed "Argument list too long").
TEST(Hostile, DuplicatesSecondDocumentsAndHugeEnvironmentValuesAreLoadErrors) {
  check_refuses("steps:\n  - run: echo a\n    run: rm -rf x\n", 3, 5, "'run' is given twice in a step (first at line 2)");
  check_refuses("env: {A: '1', A: '2'}\nsteps:\n  - run: a\n", 1, 15, "env: 'A' is given twice");
  check_refuses("steps:\n  - run: a\n---\nsteps:\n  - run: b\n", 4, 1,
                "a second YAML document (after `---`): a pipeline file holds one");
  check_refuses("env:\n  BIG: '" + repeat("x", 200'000) + "'\nsteps:\n  - run: a\n", 2, 8,
                "env BIG: 200000 bytes, more than the 128 KiB one environment variable may hold");
  // Many: in all (the 15,799th name passes 128 KiB), and found in linear time.
  std::string many = "env:\n";
  for (int i = 0; i < 20'000; ++i) many += "  V" + std::to_string(i) + ": x\n";
  check_refuses(many + "steps:\n  - run: a\n", 15'800, 3, "env: more than 128 KiB in all");
  TempDir d;
  d.write("ci.yaml", "---\nsteps:\n  - run: a\n...\n---\n");
  EXPECT_EQ(run_pcr({"check", d.file("ci.yaml")}).exit_code, 0) << "a document marker and an empty document are fine";
}

// A generated file of many small steps is planned in time linear in them (the plan looked
// each step up by name: 80,000 steps took 18 s).
TEST(Hostile, ManyStepsArePlannedInLinearTime) {
  TempDir d;
  std::string yaml = "steps:\n";
  for (int i = 0; i < 60'000; ++i) yaml += "  - run: echo " + std::to_string(i) + "\n";
  d.write("ci.yaml", yaml);
  PcrOptions o;
  o.stdout_path = d.file("plan.txt");
  auto r = run_pcr({"check", d.file("ci.yaml")}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(read_file(d.file("plan.txt")).find("step 60000/60000: echo 59999"), std::string::npos);
  if (!k_sanitized) {
    EXPECT_LT(r.seconds, 5.0) << "about 1 s when linear; 10 s when quadratic";
  }
}

TEST(Hostile, NulBytesAreLoadErrors) {
  check_refuses("steps:\n  - run: a {items}\n    for_each: [\"x\\0y\"]\n", 3, 16,
                "for_each item: contains a NUL byte");
  check_refuses("steps:\n  - run: \"echo a\\0rm -rf x\"\n", 2, 10, "run: contains a NUL byte");
  check_refuses("env: {A: \"x\\0\"}\nsteps:\n  - run: a\n", 1, 10, "env A: contains a NUL byte");
  check_refuses("steps:\n  - name: \"s\\0\"\n    run: a\n", 2, 11, "name: contains a NUL byte");
  // A raw NUL byte (not the escape) is no YAML text at all: said where it is.
  check_refuses(std::string("steps:\n  - run: echo a\0\n\0\0name: x\n", 28), 2, 16,
                "a NUL byte (\\0): not a YAML text file");
}

TEST(Hostile, EscapesInErrorsAreShownNotObeyed) {
  auto r = check_refuses("steps:\n  - run: a\n    \"out\\e[2Jput\": show\n", 3, 5,
                         "unknown key 'out\\e[2Jput'");
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos);
}

TEST(Hostile, ItemsFromARunAreCheckedToo) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - name: nul\n    for_each: {command: \"printf 'a\\\\0b\\\\n'\"}\n"
                       "    run: touch ran-{items}\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("item 1 contains a NUL byte"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(d.file("ran-a")));
  auto many = run_yaml(d, "steps:\n  - name: many\n    for_each: {command: seq 100001}\n"
                          "    run: 'true'\n");
  EXPECT_EQ(many.exit_code, 1);
  EXPECT_NE(many.out.find("the for_each command `seq 100001`: it printed more than the 100000 items one step takes"),
            std::string::npos) << many.out;
  // Read in bounded memory: ten million lines, or one line of 300 MB, are refused without
  // being held (a 1 GB line was taken as an item, and stored as a key of timings.json).
  for (const std::string& command : {std::string("seq 10000000"), std::string("head -c 300000000 /dev/zero | tr '\\\\0' a")}) {
    PcrOptions o;
    auto huge = run_yaml(d, "steps:\n  - name: huge\n    for_each: {command: \"" + command + "\"}\n    run: touch ran\n", {}, o);
    EXPECT_EQ(huge.exit_code, 1) << command;
    EXPECT_NE(huge.out.find(command.size() < 20 ? "more than the 100000 items"
                                               : "line 1 is longer than the 1 MiB an item may have"),
              std::string::npos) << huge.out;
    EXPECT_FALSE(exists(d.file("ran")));
    EXPECT_FALSE(exists(d.file(".pcr/timings.json")) && read_file(d.file(".pcr/timings.json")).size() > 100'000);
    if (!k_sanitized) {
      EXPECT_LT(huge.max_rss_kb, k_max_rss_kb) << command;
    }
  }
}

// What `capture` keeps is held in memory and exported into every later job's environment:
// both are bounded, and a capture too big for the environment must not stop later jobs —
// cleanup above all — from starting ("Argument list too long").
TEST(Hostile, ACaptureTooBigForTheEnvironmentStillLetsEveryJobStart) {
  TempDir d;
  auto r = run_yaml(d, "steps:\n  - {name: list, run: 'seq 30000', capture: XS, output: hide}\n"
                       "  - {name: next, run: 'echo \"XS has ${#XS} bytes\"; touch next'}\n"
                       "  - name: each\n    for_each: {lines: XS}\n    groups: 2\n"
                       "    run: 'echo {items} | wc -w > words{job}'\n"
                       "cleanup:\n  - run: touch cleaned\n",
                    {"--json", d.file("events.json")});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(exists(d.file("next")));
  EXPECT_TRUE(exists(d.file("cleaned")));
  EXPECT_NE(r.out.find("XS has 0 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("list: XS is not exported to later jobs: its 30000 lines (168893 bytes) are more than "
                       "the 128 KiB one environment variable may hold"),
            std::string::npos) << r.out;
  EXPECT_EQ(read_file(d.file("words1")), "15000\n");
  EXPECT_EQ(read_file(d.file("words2")), "15000\n");
  EXPECT_NE(read_file(d.file("events.json")).find("\"kind\":\"capture_not_exported\""), std::string::npos);
  // Several smaller ones: exported while they fit 1 MiB together, the rest not.
  std::string yaml = "steps:\n";
  for (int i = 1; i <= 12; ++i)
    yaml += fmt::format("  - {{run: 'seq {}', capture: C{}, output: hide}}\n", 18000, i);
  yaml += "cleanup:\n  - run: 'echo \"C1 ${#C1} C12 ${#C12}\"; touch cleaned2'\n";
  auto many = run_yaml(d, yaml);
  EXPECT_EQ(many.exit_code, 0) << many.out;
  EXPECT_TRUE(exists(d.file("cleaned2")));
  EXPECT_NE(many.out.find("C1 96893 C12 0"), std::string::npos) << many.out;
  EXPECT_NE(many.out.find("the 1 MiB all captured variables may hold together"), std::string::npos) << many.out;
}

// A command longer than one argument may be (128 KiB: all of {items} of a big group)
// still runs: the shell reads it from a private file. It failed "Argument list too long".
TEST(Hostile, ACommandLongerThanAnArgumentRuns) {
  TempDir d;
  fs::create_directories(d.file("tmp"));
  PcrOptions o;
  o.env = {"TMPDIR=" + d.file("tmp")};
  auto r = run_yaml(d, "steps:\n  - name: all in one\n    for_each: {command: 'seq 30000'}\n    groups: 1\n"
                       "    run: 'echo {items} | wc -w > words; echo \"args: $#\"'\n",
                    {}, o);
  EXPECT_EQ(r.exit_code, 0) << r.out.substr(0, 2000);
  EXPECT_EQ(read_file(d.file("words")), "30000\n");
  EXPECT_NE(r.out.find("args: 0"), std::string::npos) << "no arguments, as with sh -c";
  EXPECT_LT(r.out.size(), 20'000u) << "the summary does not print the whole command";
  EXPECT_TRUE(fs::is_empty(d.file("tmp"))) << "the file goes with the run's spool";
}

TEST(Hostile, KeptStdoutIsBounded) {
  TempDir d;
  // More than a capture keeps (16 MiB or 100,000 lines): the job fails saying why, in
  // bounded memory.
  auto lines = run_yaml(d, "steps:\n  - {name: big, run: 'seq 100001', capture: XS, output: hide}\n");
  EXPECT_EQ(lines.exit_code, 1) << lines.out;
  EXPECT_NE(lines.out.find("the step's stdout is more than the 16 MiB or 100000 lines its capture keeps"),
            std::string::npos) << lines.out;
  EXPECT_EQ(run_yaml(d, "steps:\n  - {name: big, run: 'seq 100000', capture: XS, output: hide}\n").exit_code, 0);
  auto r = run_yaml(d, "steps:\n  - {name: big, run: 'yes 0123456789abcdef0123456789abcdef | head -c 20000000', capture: XS, output: hide}\n"
                       "  - {name: later, run: touch later}\ncleanup:\n  - run: touch cleaned\n");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("the step's stdout is more than the 16 MiB or 100000 lines its capture keeps"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(d.file("later")));
  EXPECT_TRUE(exists(d.file("cleaned")));
  if (!k_sanitized) {
    EXPECT_LT(r.max_rss_kb, k_max_rss_kb);
  }
  // `expect` reads a line at a time: a 300 MB line costs no 300 MB.
  auto e = run_yaml(d, "steps:\n  - name: one line\n    run: \"printf ok; head -c 300000000 /dev/zero | tr '\\\\0' a\"\n"
                       "    expect: ^ok\n    output: hide\n");
  EXPECT_EQ(e.exit_code, 0) << e.out;
  if (!k_sanitized) {
    EXPECT_LT(e.max_rss_kb, k_max_rss_kb);
  }
}

TEST(Hostile, GlobDoesNotLoopThroughSymlinks) {
  TempDir d;
  fs::create_directories(d.file("t/unit"));
  d.write("t/unit/a_test.sh", "");
  d.write("t/b_test.sh", "");
  fs::create_directory_symlink("..", d.file("t/unit/loop"));
  auto r = run_yaml(d, "steps:\n  - run: echo {items}\n    for_each: {glob: \"**/*_test.sh\"}\n",
                    {"--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("2 jobs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("echo t/b_test.sh"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("echo t/unit/a_test.sh"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("loop"), std::string::npos) << r.out;
}

TEST(Hostile, ComposeExampleChecksCleanly) {
  // Under ASan this read a yaml-cpp node after its scope ended (docker/lint.cpp).
  auto r = run_pcr({"check", std::string(PCR_SOURCE_DIR) + "/examples/compose/ci.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("step 1/"), std::string::npos) << r.out;
}

TEST(Hostile, AnExceptionReachingMainIsAMessageNotAnAbort) {
  // std::filesystem throws on an empty path; before, that was "terminate called" and SIGABRT.
  auto r = run_pcr({"clean", ""});
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("pcr: error: filesystem error: cannot make absolute path", 0), 0u) << r.err;
}
