#include <pcr/results/tap.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <utility>

namespace pcr::results {
namespace {

constexpr std::size_t k_max_problems = 3;  // kept in order; more are "…"

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[i]) != prefix[i]) return false;
  return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Leading decimal digits of `s` as a number, saturating far above any test count (so a
// 30-digit number is neither undefined behaviour nor a small number). Removes them.
unsigned long long take_number(std::string_view& s) {
  constexpr unsigned long long k_saturated = 1'000'000'000'000ULL;
  unsigned long long n = 0;
  while (!s.empty() && is_digit(s.front())) {
    n = std::min(k_saturated, n * 10 + static_cast<unsigned>(s.front() - '0'));
    s.remove_prefix(1);
  }
  return n;
}

enum class Directive { none, skip, todo };

// The directive a `#` starts (`text` is what follows it) and its reason: the first word
// decides, in any case, and may be longer (`SKIPPED:`), as Test::Harness reads it.
Directive directive(std::string_view text, std::string_view& reason) {
  // Leading blanks only: trimming the end at every `#` of a line would be quadratic.
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  Directive d = starts_with_nocase(text, "skip")   ? Directive::skip
                : starts_with_nocase(text, "todo") ? Directive::todo
                                                   : Directive::none;
  if (d != Directive::none) {
    size_t word = 0;
    while (word < text.size() && !is_space(text[word])) ++word;
    reason = trim(text.substr(word));
  }
  return d;
}

std::string tests_word(unsigned long long n) {
  return fmt::format("{} test{}", n, n == 1 ? "" : "s");
}

}  // namespace

void TapParser::feed(std::string_view chunk) {
  while (!chunk.empty() && !m_done) {
    const size_t nl = chunk.find('\n');
    const std::string_view piece = chunk.substr(0, nl);
    if (nl != std::string_view::npos && m_partial.empty()) {
      // A whole line in this chunk: no copy.
      line(piece.substr(0, limits::tap_line));
    } else {
      // Only the first limits::tap_line bytes of a line are kept: memory stays bounded.
      if (m_partial.size() < limits::tap_line)
        m_partial.append(piece.substr(0, limits::tap_line - m_partial.size()));
      if (nl == std::string_view::npos) return;
      line(m_partial);
      m_partial.clear();
    }
    chunk.remove_prefix(nl + 1);
  }
}

void TapParser::line(std::string_view text) {
  ++m_line_number;
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.empty()) {
    if (m_in_yaml) m_details.add_line(m_results.tests.back().details, text);
    return;
  }
  if (is_space(text.front())) {
    indented(text);
  } else {
    top_level(text);
  }
}

void TapParser::indented(std::string_view text) {
  size_t indent = 0;
  while (indent < text.size() && is_space(text[indent])) ++indent;
  const std::string_view content = trim(text);
  if (m_in_yaml) {
    m_details.add_line(m_results.tests.back().details, text);
    if (indent == m_yaml_indent && content == "...") m_in_yaml = false;
    return;
  }
  if (m_after_test && content == "---") {
    m_after_test = false;
    m_in_yaml = true;
    m_yaml_indent = indent;
    m_details.add_line(m_results.tests.back().details, text);
    return;
  }
  // A bail out inside a subtest ends the whole job's TAP, as at the top level (TAP 14:
  // a harness stops the run there, whatever the nesting).
  if (starts_with_nocase(content, "bail out!")) return bail_out(content);
  // A subtest's lines (or other indented text): they come before the test line that sums
  // the subtest up at this level, so they wait for it.
  m_after_test = false;
  m_subtest_writer.add_line(m_subtest, text);
}

void TapParser::top_level(std::string_view text) {
  m_in_yaml = false;  // a block not closed by `...` ends here anyway
  m_after_test = false;
  if (text.front() == '#') {
    if (text.starts_with("# Subtest")) {
      // A new subtest: what follows belongs to the test line that ends it.
      m_subtest.clear();
      m_subtest_writer = {};
      m_subtest_writer.add_line(m_subtest, text);
      m_attach = false;
    } else if (m_attach) {
      m_details.add_line(m_results.tests.back().details, text);
    }
    return;
  }
  if (test_line(text) || plan_line(text)) return;
  if (starts_with_nocase(text, "bail out!")) bail_out(text);
  // `TAP version`, `pragma` and anything else: nothing to do.
}

void TapParser::bail_out(std::string_view text) {
  m_any_tap = true;
  if (text.find('\0') != std::string_view::npos)
    return make_unreadable(fmt::format("binary data in TAP line {}", m_line_number));
  const std::string reason = detail::capped(trim(text.substr(9)), limits::message);
  m_bail_out = reason.empty() ? "bail out" : "bail out: " + reason;
  m_bailed_out = true;
  m_done = true;  // TAP: nothing after a bail out counts
}

bool TapParser::test_line(std::string_view text) {
  bool ok = true;
  if (text.starts_with("not ok")) {
    ok = false;
    text.remove_prefix(6);
  } else if (text.starts_with("ok")) {
    text.remove_prefix(2);
  } else {
    return false;
  }
  if (!text.empty() && !is_space(text.front())) return false;  // `okay`, `oknot`
  m_any_tap = true;
  if (text.find('\0') != std::string_view::npos) {
    make_unreadable(fmt::format("binary data in TAP line {}", m_line_number));
    return true;
  }
  if (m_results.tests.size() >= limits::tests) {
    make_unreadable(fmt::format("more than {} tests", limits::tests));
    return true;
  }
  if (m_plan_after_tests) add_problem("tests after the plan's end");

  text = trim(text);
  const unsigned long long expected = m_last_number + 1;
  unsigned long long number = expected;
  if (!text.empty() && is_digit(text.front())) {
    std::string_view after = text;
    const unsigned long long given = take_number(after);
    // `ok 1a` is test `1a`, not test 1.
    if (after.empty() || is_space(after.front()) || after.front() == '#') {
      number = given;
      text = trim(after);
    }
  }
  if (number != expected) {
    if (number <= UINT_MAX && m_numbers.count(static_cast<unsigned>(number)))
      add_problem(fmt::format("test {} appears twice", number));
    else
      add_problem(fmt::format("test {} out of order (expected {})", number, expected));
  }
  m_last_number = number;
  const unsigned stored = static_cast<unsigned>(std::min<unsigned long long>(number, UINT_MAX));
  m_numbers.insert(stored);
  if (text.starts_with('-') && (text.size() == 1 || is_space(text[1]))) text = trim(text.substr(1));

  // The description runs to the first unescaped `#` that starts a directive; a `#` that
  // does not stays in it.
  std::string description;
  Directive kind = Directive::none;
  std::string_view reason;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size() && (text[i + 1] == '#' || text[i + 1] == '\\')) {
      description += text[++i];
    } else if (c == '#' && (kind = directive(text.substr(i + 1), reason)) != Directive::none) {
      break;
    } else {
      description += c;
    }
  }

  Test test;
  test.number = stored;
  const std::string_view name = trim(description);
  test.name = name.empty() ? std::to_string(number) : detail::capped(name);
  test.outcome = kind == Directive::todo   ? Outcome::todo
                 : !ok                     ? Outcome::failed
                 : kind == Directive::skip ? Outcome::skipped
                                           : Outcome::passed;
  test.reason = detail::capped(reason, limits::message);
  m_results.tests.push_back(std::move(test));
  m_details.next_test();
  if (!m_subtest.empty()) {
    m_details.add_line(m_results.tests.back().details, m_subtest);
    m_subtest.clear();
  }
  m_attach = true;
  m_after_test = true;
  return true;
}

bool TapParser::plan_line(std::string_view text) {
  if (!text.starts_with("1..")) return false;
  std::string_view rest = text.substr(3);
  if (rest.empty() || !is_digit(rest.front())) return false;
  const unsigned long long count = take_number(rest);
  const std::string_view comment = trim(rest);
  if (!rest.empty() && !is_space(rest.front()) && rest.front() != '\r') return false;  // `1..5x`
  if (!comment.empty() && comment.front() != '#') return false;  // `1..5 files copied`
  m_any_tap = true;
  if (text.find('\0') != std::string_view::npos) {
    make_unreadable(fmt::format("binary data in TAP line {}", m_line_number));
    return true;
  }
  m_attach = false;
  m_subtest.clear();
  if (m_plan_seen) {
    add_problem("more than one plan");
    return true;
  }
  m_plan_seen = true;
  m_planned = count;
  m_plan_after_tests = !m_results.tests.empty();
  if (count == 0 && !comment.empty()) {
    std::string_view reason;
    if (directive(comment.substr(1), reason) != Directive::skip) reason = trim(comment.substr(1));
    m_results.skip_reason = detail::capped(reason, limits::message);
  }
  return true;
}

void TapParser::add_problem(std::string message) {
  if (std::find(m_problems.begin(), m_problems.end(), message) != m_problems.end()) return;
  if (m_problems.size() == k_max_problems) {
    m_more_problems = true;
    return;
  }
  m_problems.push_back(std::move(message));
}

void TapParser::make_unreadable(std::string message) {
  m_results = Results{};
  m_results.unreadable = std::move(message);
  m_numbers = {};
  m_subtest = {};
  m_done = true;
}

Results TapParser::finish() {
  if (!m_done && !m_partial.empty()) line(m_partial);
  m_partial = {};
  m_done = true;
  if (!m_results.unreadable.empty()) return std::move(m_results);
  if (!m_any_tap) {
    make_unreadable("no TAP plan or test line in stdout");
    return std::move(m_results);
  }
  // A bail out, or what only the end shows, comes first: it says the most.
  std::vector<std::string> problems;
  const size_t ran = m_results.tests.size();
  if (m_bailed_out) {
    problems.push_back(m_bail_out);
  } else {
    if (!m_plan_seen)
      problems.push_back("no plan");
    else if (m_planned != ran)
      problems.push_back(fmt::format("planned {}, ran {}", tests_word(m_planned), ran));
  }
  problems.insert(problems.end(), m_problems.begin(), m_problems.end());
  if (m_more_problems) problems.push_back("…");
  for (const auto& p : problems) m_results.problem += (m_results.problem.empty() ? "" : "; ") + p;
  m_results.skip_all = m_plan_seen && m_planned == 0 && ran == 0;
  if (!m_results.skip_all) m_results.skip_reason.clear();
  return std::move(m_results);
}

}  // namespace pcr::results
