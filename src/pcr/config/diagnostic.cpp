// Diagnostics and LoadError: how the loader's findings are sorted, masked and worded.
#include <pcr/config/loader.hpp>
#include <pcr/util/mask.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

namespace pcr::config {

std::string Diagnostic::str() const {
  // Messages quote the file's own text, which may hold terminal escapes: shown, not obeyed.
  if (line == 0) return fmt::format("{}: {}", util::visible(file), util::visible(message));
  return fmt::format("{}:{}:{}: {}", util::visible(file), line, column, util::visible(message));
}

namespace {
std::vector<Diagnostic> in_file_order(std::vector<Diagnostic> ds) {
  std::stable_sort(ds.begin(), ds.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  return ds;
}
std::string join_messages(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (const auto& d : ds) out += (out.empty() ? "" : "\n") + d.str();
  return out;
}

// `diagnostics` with every secret masked, whole or cut short by a quote's "…".
std::vector<Diagnostic> masked(std::vector<Diagnostic> diagnostics, const std::vector<std::string>& secrets) {
  const util::Masker mask(secrets);
  if (!mask.active()) return diagnostics;
  for (auto& d : diagnostics) d.message = mask.mask_cut(d.message);  // a quote is elided to a line
  return diagnostics;
}

}  // namespace

LoadError::LoadError(std::vector<Diagnostic> diagnostics, const std::vector<std::string>& secrets)
    : LoadError(Ordered{}, in_file_order(masked(std::move(diagnostics), secrets))) {}

LoadError::LoadError(Ordered, std::vector<Diagnostic> diagnostics)
    : std::runtime_error(join_messages(diagnostics)), m_diagnostics(std::move(diagnostics)) {}

}  // namespace pcr::config
