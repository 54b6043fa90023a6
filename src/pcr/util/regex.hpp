#pragma once

#include <pcr/util/expected.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace pcr::util {

// A regular expression matched in time linear in the text, with a bounded stack and
// bounded memory, whatever the pattern or the text (RE2). The syntax is RE2's: Perl-like
// classes, repetition, alternation and groups; no backreferences and no lookaround, which
// `compile` refuses with RE2's own words.
class Regex {
 public:
  static Expected<Regex> compile(std::string_view pattern);

  // True when the pattern matches somewhere in `text`.
  bool search(std::string_view text) const;

 private:
  struct Impl;
  explicit Regex(std::shared_ptr<const Impl> impl) : m_impl(std::move(impl)) {}
  std::shared_ptr<const Impl> m_impl;  // RE2 objects are immutable and thread-safe to share
};

}  // namespace pcr::util
