#include "../support/support.hpp"
#include <pcr/util/duration.hpp>
#include <pcr/util/glob.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/regex.hpp>
#include <pcr/util/shell.hpp>
#include <pcr/util/text.hpp>

#include <gtest/gtest.h>

#include <stdio.h>
#include <sys/stat.h>

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
  EXPECT_EQ(parse_duration("1h2m3s4ms")->count(), 3'723'004);
}

TEST(ParseDuration, RejectsNonsense) {
  for (const char* bad : {"", "s", "10x", "-5s", "1h30", "abc", "10 s", "1e3s", "1h1h", "30m1h", "1s500ms1s", "1.5.5s"}) {
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
  EXPECT_EQ(shell_quote_inside("it's"), "it'\\''s");
  EXPECT_EQ(shell_quote("it's"), "'" + shell_quote_inside("it's") + "'");
  EXPECT_EQ(shell_join({"a b", "c"}), "'a b' c");
}

// The escaper's real test: /bin/sh must read every word back byte for byte.
TEST(ShellQuote, RoundTripsThroughRealShell) {
  const std::vector<std::string> words = {"plain",     "with space",  "it's",     "$HOME",  "a;b",
                                          "*",         "back\\slash", "\"dq\"",   "`tick`", "$(x)",
                                          "tab\there", "new\nline",   "-n",       "~",      "!bang",
                                          "{a,b}",     "''",          "\x01\x7f", "ünï"};
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
  for (const char* f : {"spec/b_spec.rb", "spec/a_spec.rb", "spec/deep/er/c_spec.rb",
                        "spec/helper.rb", "spec/.hidden_spec.rb", "top_spec.rb"}) {
    fs::create_directories((dir / f).parent_path());
    std::ofstream(dir / f) << "x";
  }
  EXPECT_EQ(*glob(dir.string(), "spec/*_spec.rb"),
            (std::vector<std::string>{"spec/a_spec.rb", "spec/b_spec.rb"}));
  EXPECT_EQ(
      *glob(dir.string(), "spec/**/*_spec.rb"),
      (std::vector<std::string>{"spec/a_spec.rb", "spec/b_spec.rb", "spec/deep/er/c_spec.rb"}));
  EXPECT_EQ(glob(dir.string(), "**/*_spec.rb")->size(), 4u);
  EXPECT_EQ(*glob(dir.string(), "**/**/*_spec.rb"), *glob(dir.string(), "**/*_spec.rb"));
  EXPECT_TRUE(glob(dir.string(), "nothing/*.rb")->empty());
  fs::remove_all(dir);
}

TEST(Glob, DoubleStarDoesNotFollowSymlinkedDirectories) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("pcr-glob-loop-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "a" / "b");
  std::ofstream(dir / "a" / "b" / "t.rb") << "x";
  fs::create_directory_symlink("..", dir / "a" / "b" / "loop");  // a cycle
  fs::create_directory_symlink(dir / "a", dir / "link");         // another way in
  fs::create_symlink(dir / "a" / "b" / "t.rb", dir / "a" / "file-link.rb");
  // Listed once, by its real path; a symlink to a file is a file.
  EXPECT_EQ(*glob(dir.string(), "**/*.rb"),
            (std::vector<std::string>{"a/b/t.rb", "a/file-link.rb"}));
  // A named segment still follows a link, as the shell does.
  EXPECT_EQ(*glob(dir.string(), "link/b/*.rb"), (std::vector<std::string>{"link/b/t.rb"}));
  fs::remove_all(dir);
}

TEST(Glob, StopsAtItsLimitsWithAnError) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("pcr-glob-limit-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "d");
  for (int i = 0; i < 20; ++i) std::ofstream(dir / "d" / ("f" + std::to_string(i))) << "x";
  auto many = glob(dir.string(), "**/f*", {10, 1000});
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error(), "glob '**/f*': matches more than 10 files");
  auto wide = glob(dir.string(), "**/nothing", {1000, 15});
  ASSERT_FALSE(wide);
  EXPECT_NE(wide.error().find("looked at more than 15 directory entries"), std::string::npos);
  EXPECT_EQ(glob(dir.string(), "**/f1*", {20, 1000})->size(), 11u);
  fs::remove_all(dir);
}

TEST(Regex, LinearTimeSearchAndClearErrors) {
  auto re = Regex::compile("^ok [0-9]+ - (passed|fine)$");
  ASSERT_TRUE(re);
  EXPECT_TRUE(re->search("ok 12 - passed"));
  EXPECT_FALSE(re->search("not ok 12 - passed"));
  auto back = Regex::compile("(a)\\1");
  ASSERT_FALSE(back);
  EXPECT_NE(back.error().find("invalid escape sequence"), std::string::npos) << back.error();
  EXPECT_FALSE(Regex::compile("(?=x)"));
  // The classic catastrophic pattern is linear here: a long text costs no stack or time.
  auto evil = Regex::compile("(a+)+$");
  ASSERT_TRUE(evil);
  EXPECT_FALSE(evil->search(std::string(200'000, 'a') + "!"));
  // Deep nesting is parsed without recursion; a pattern that would expand past RE2's
  // memory budget is refused, not built.
  EXPECT_TRUE(Regex::compile(std::string(200'000, '(') + std::string(200'000, ')')));
  auto huge = Regex::compile("((a{100}){100}){100}");
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error(), "invalid repetition size: {100}");
}

TEST(HasControls, FindsEveryControlButNewlineTabAndReturnAtAnyOffset) {
  const std::string plain = "line one\ttab\r\nünïcode ✓ and more text past sixteen bytes\n";
  EXPECT_FALSE(has_controls(plain));
  for (size_t at = 0; at <= plain.size(); ++at)
    for (char c : {'\x1b', '\x07', '\0', '\x7f', '\x08'}) {
      std::string s = plain;
      s.insert(at, 1, c);
      EXPECT_TRUE(has_controls(s)) << "at " << at << " byte " << int(c);
    }
}

TEST(HasControls, AgreesWithTheRuleForEveryByteAtEveryOffsetOfTheWideLoop) {
  // 140 bytes: two 64-byte steps of the widest loop and a bytewise rest.
  for (int c = 0; c < 256; ++c) {
    const bool control = (c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f;
    for (size_t at = 0; at < 140; ++at) {
      std::string s(140, 'a');
      s[at] = static_cast<char>(c);
      ASSERT_EQ(has_controls(s), control) << "at " << at << " byte " << c;
    }
  }
}

TEST(Visible, ControlCharactersAreShownNotObeyed) {
  EXPECT_EQ(visible("plain ünïcode ✓"), "plain ünïcode ✓");
  EXPECT_EQ(visible("a\x1b[2Jb"), "a\\e[2Jb");
  EXPECT_EQ(visible("\x1b]0;title\x07"), "\\e]0;title\\x07");
  EXPECT_EQ(visible(std::string("nul\0here", 8)), "nul\\0here");
  EXPECT_EQ(visible("two\nlines\t"), "two\\nlines\\t");
  EXPECT_EQ(visible("two\nlines", true), "two\nlines");
  EXPECT_EQ(visible("\xc2\x9b"
                    "2J"),
            "\\u009b2J");  // C1 CSI
  EXPECT_EQ(visible("bad\xff\xc3"), "bad\\xff\\xc3");
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

TEST(Masker, OverlappingSecretsAreMaskedAsOneAlsoWhenTheyArriveInPieces) {
  Masker two({"abcd", "cdef"});
  EXPECT_EQ(two.mask("xabcdefx abcd cdef"), "x***x *** ***");
  // The second secret's end is not there yet when the first is found: held, then masked.
  std::string out = two.feed("xabcd");
  out += two.feed("efx");
  out += two.flush();
  EXPECT_EQ(out, "x***x");
  EXPECT_EQ(Masker({"abc", "cde", "efg"}).mask("1abcdefg2"), "1***2");
  // Secrets that cannot overlap: a match is shown at once, not held for what may follow
  // (only the last bytes, which could start one, wait).
  Masker one({"hunter2-secret"});
  EXPECT_EQ(one.feed("token: hunter2-secret\n"), "token: ***");
  Masker overlapping({"abcd", "cdef"});
  EXPECT_EQ(overlapping.feed("token: abcd\n"), "token: ");
  // Stars alone are never masked: each pass would find them in its own mask again.
  Masker stars({"*", "**"});
  EXPECT_FALSE(stars.active());
  EXPECT_EQ(stars.mask("a*b"), "a*b");
}

TEST(Masker, FindsASecretAtEveryOffsetAmongNearMisses) {
  // Filler full of near misses (the secret's first and last byte at its distance, a wrong
  // middle), long enough for the wide search and its rest; the secret at every offset.
  for (const std::string& secret :
       std::vector<std::string>{"a-b", "s3cr3t!", "not-in-the-output-4242", std::string(40, 'q') + "Z"}) {
    std::string miss = secret;
    miss[miss.size() / 2] = '#';
    std::string filler;
    while (filler.size() < 150) filler += miss + "_";
    for (size_t at = 0; at <= 100; ++at) {
      std::string text = filler;
      text.insert(at, secret);
      std::string expected = filler;
      expected.insert(at, "***");
      ASSERT_EQ(Masker({secret}).mask(text), expected) << secret << " at " << at;
    }
  }
  // Two bytes: no middle to miss by; the first candidate is the match.
  EXPECT_EQ(Masker({"ab"}).mask(std::string(100, 'a') + "b" + std::string(50, 'b')),
            std::string(99, 'a') + "***" + std::string(50, 'b'));
}

TEST(CutPiece, ThroughTheFirstNewlineElseAnEighth) {
  EXPECT_EQ(pcr::util::cut_piece("ret123\nnext line\n"), 7u);
  EXPECT_EQ(pcr::util::cut_piece("12345678abcdefgh"), 2u);  // no newline: the first eighth
  EXPECT_EQ(pcr::util::cut_piece("no line after it\n"), 2u);
  EXPECT_EQ(pcr::util::cut_piece(std::string(100'000, 'x')), 4096u);
  EXPECT_EQ(pcr::util::cut_piece(""), 0u);
}

TEST(PrivateDirs, EveryFolderMadeIsTheUsersOnly) {
  pcr::test::TempDir d;
  ASSERT_TRUE(pcr::util::make_private_dirs(d.file("a/b/c")));
  for (const char* made : {"a", "a/b", "a/b/c"}) {
    struct stat st {};
    ASSERT_EQ(::stat(d.file(made).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u) << made;
  }
  EXPECT_TRUE(pcr::util::make_private_dirs(d.file("a/b")));  // already there
  d.write("file", "");
  EXPECT_FALSE(pcr::util::make_private_dirs(d.file("file/x")));
  EXPECT_FALSE(pcr::util::make_private_dirs(d.file("file")));
}
