// Hostile and generated pipeline files: every one is a clear load error at file:line:column
// (exit 2, nothing runs) or a plan, never a crash; in bounded time and memory.
#include "../support/pcr_binary.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace pcr::test;

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
  check_refuses(yaml, 1, 4, "more than 32 MiB of text once its YAML aliases");
  // Billion laughs: each level doubles ten times what the one before holds.
  std::string laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    laughs += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) laughs += std::string(i ? ", " : "") + "*" + char(c - 1);
    laughs += "]\n";
  }
  laughs += "steps: [a]\n";
  check_refuses(laughs, 1, 4, "more than 1000000 values once its YAML aliases");
  // An anchor that names itself is a cycle: refused at the same bound, in bounded memory
  // (each visit used to push its 100 children again; the walk's stack reached gigabytes).
  std::string cycle = "a: &a [";
  for (int i = 0; i < 100; ++i) cycle += std::to_string(i) + ", ";
  cycle += "*a]\nsteps: [a]\n";
  auto r = check_refuses(cycle, 1, 4, "or an alias names the value it is inside");
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
  EXPECT_NE(many.out.find("100001 items, more than the 100000"), std::string::npos) << many.out;
}

TEST(Hostile, GlobDoesNotLoopThroughSymlinks) {
  namespace fs = std::filesystem;
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
