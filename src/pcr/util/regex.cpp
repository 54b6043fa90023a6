#include <pcr/util/regex.hpp>

#include <re2/re2.h>

namespace pcr::util {

struct Regex::Impl {
  explicit Impl(std::string_view pattern, const RE2::Options& options)
      : re(re2::StringPiece(pattern.data(), pattern.size()), options) {}
  RE2 re;
};

Expected<Regex> Regex::compile(std::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);  // the error comes back to the caller instead
  // RE2's default program budget (8 MiB) bounds what a huge or nested pattern may cost.
  auto impl = std::make_shared<const Impl>(pattern, options);
  if (!impl->re.ok()) return Expected<Regex>::failure(impl->re.error());
  return Regex(std::move(impl));
}

bool Regex::search(std::string_view text) const {
  return RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), m_impl->re);
}

}  // namespace pcr::util
