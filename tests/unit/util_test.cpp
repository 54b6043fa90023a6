#include <gtest/gtest.h>
#include <stdio.h>

#include <pcr/util/duration.hpp>
#include <pcr/util/glob.hpp>
#include <pcr/util/shell.hpp>
#include <pcr/util/text.hpp>
#include <filesystem>
#include <fstream>

using namespace pcr::util;

TEST(ParseDuration, AcceptsUnitsAndCombinations) {
  EXPECT_EQ(parse_duration("90s")->count(), 90'000);
  EXPECT_EQ(parse_duration("10m")->count(), 600'000);
  EXPECT_EQ(parse_duration("1h30m")->count(), 5'400'000);
  EXPECT_EQ(parse_duration("500ms")->count(), 500);
  EXPECT_EQ(parse_duration("1.5s")->count(), 1'500);
  EXPECT_EQ(parse_duration("3")->count(), 3'000);
  EXPECT_EQ(parse_duration("0s")->count(), 0);
}

TEST(ParseDuration, RejectsNonsense) {
  for (const char* bad : {"", "s", "10x", "-5s", "1h30", "abc", "10 s", "1e3s"}) {
    auto d = parse_duration(bad);
    EXPECT_FALSE(d) << bad;
    if (!d) {
      EXPECT_NE(d.error().find("bad duration"), std::string::npos);
    }
  }
}

TEST(FormatDuration, ReadableAtEveryScale) {
  EXPECT_EQ(format_duration(Millis(120)), "120ms");
  EXPECT_EQ(format_duration(Millis(2'049)), "2.0s");
  EXPECT_EQ(format_duration(Millis(90'000)), "1m30s");
  EXPECT_EQ(format_duration(Millis(3'720'000)), "1h02m");
  EXPECT_EQ(format_duration_spec(Millis(5'400'000)), "1h30m");
  EXPECT_EQ(format_duration_spec(Millis(3'000)), "3s");
  EXPECT_EQ(format_duration_spec(Millis(1'250)), "1250ms");
}

TEST(ShellQuote, SafeWordsUnchanged) {
  EXPECT_EQ(shell_quote("spec/a_spec.rb"), "spec/a_spec.rb");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_join({"a b", "c"}), "'a b' c");
}

// The escaper's real test: /bin/sh must read every word back byte for byte.
TEST(ShellQuote, RoundTripsThroughRealShell) {
  const std::vector<std::string> words = {"plain", "with space", "it's", "$HOME", "a;b", "*", "back\\slash",
                                          "\"dq\"", "`tick`", "$(x)", "tab\there", "new\nline", "-n", "~",
                                          "!bang", "{a,b}", "''", "\x01\x7f", "ünï"};
  std::string cmd = "printf '%s\\0' " + shell_join(words);
  FILE* f = ::popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ASSERT_EQ(::pclose(f), 0);
  std::vector<std::string> back;
  size_t start = 0;
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] == '\0') back.push_back(out.substr(start, i - start)), start = i + 1;
  EXPECT_EQ(back, words);
}

TEST(StripAnsi, RemovesSequencesSplitAcrossChunks) {
  EXPECT_EQ(strip_ansi("\x1b[31mred\x1b[0m plain"), "red plain");
  EXPECT_EQ(strip_ansi("\x1b]0;title\x07text"), "text");
  AnsiStripper s;
  std::string out;
  s.feed("a\x1b[3", out);
  s.feed("1mb\x1b", out);
  s.feed("[0mc", out);
  EXPECT_EQ(out, "abc");
}

TEST(DidYouMean, SuggestsCloseKeysOnly) {
  std::vector<std::string> keys = {"timeout", "idle_timeout", "retries", "workdir"};
  EXPECT_EQ(did_you_mean("timout", keys), "timeout");
  EXPECT_EQ(did_you_mean("retry", keys), "retries");
  EXPECT_EQ(did_you_mean("zzzzzz", keys), "");
}

TEST(Elide, CutsToWidthWithEllipsis) {
  EXPECT_EQ(elide("hello", 10), "hello");
  EXPECT_EQ(elide("hello world", 6), "hello…");
  EXPECT_EQ(display_width(elide("ééééééé", 4)), 4u);
}

TEST(SplitLines, NoPhantomLastLine) {
  EXPECT_EQ(split_lines("a\nb\n"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(split_lines("a\n\nb"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(split_lines("").empty());
}

TEST(Glob, SortedRecursiveAndSegmentwise) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("pcr-glob-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const char* f : {"spec/b_spec.rb", "spec/a_spec.rb", "spec/deep/er/c_spec.rb", "spec/helper.rb",
                        "spec/.hidden_spec.rb", "top_spec.rb"}) {
    fs::create_directories((dir / f).parent_path());
    std::ofstream(dir / f) << "x";
  }
  EXPECT_EQ(glob(dir.string(), "spec/*_spec.rb"), (std::vector<std::string>{"spec/a_spec.rb", "spec/b_spec.rb"}));
  EXPECT_EQ(glob(dir.string(), "spec/**/*_spec.rb"),
            (std::vector<std::string>{"spec/a_spec.rb", "spec/b_spec.rb", "spec/deep/er/c_spec.rb"}));
  EXPECT_EQ(glob(dir.string(), "**/*_spec.rb").size(), 4u);
  EXPECT_TRUE(glob(dir.string(), "nothing/*.rb").empty());
  fs::remove_all(dir);
}

#include <pcr/util/mask.hpp>

TEST(Masker, ReplacesSecretsWholeAndSplitAcrossPieces) {
  Masker m({"hunter2", "", "pw"});
  EXPECT_EQ(m.mask("user hunter2 pw ok"), "user *** *** ok");
  std::string out = m.feed("abc hun");
  out += m.feed("ter2 def");
  out += m.flush();
  EXPECT_EQ(out, "abc *** def");
  EXPECT_EQ(out.find("hun"), std::string::npos);
}

TEST(Masker, LongerSecretWinsAndNoSecretsMeansPassThrough) {
  Masker m({"abc", "abcdef"});
  EXPECT_EQ(m.mask("xabcdefx abcx"), "x***x ***x");
  Masker none;
  EXPECT_FALSE(none.active());
  EXPECT_EQ(none.feed("abc"), "abc");
}
