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
  for (auto& d : diagnostics) {
    d.message = mask.mask(d.message);
    // A quote is elided to a line: what precedes its "…" may be a secret's beginning.
    for (std::size_t cut = d.message.find("…"); cut != std::string::npos; cut = d.message.find("…", cut + 1))
      for (const auto& secret : secrets) {
        for (std::size_t len = std::min(secret.size(), cut); len >= 4; --len)
          if (d.message.compare(cut - len, len, secret, 0, len) == 0) {
            d.message.replace(cut - len, len, "***");
            cut = cut - len + 3;
            break;
          }
      }
  }
  return diagnostics;
}

}  // namespace

LoadError::LoadError(std::vector<Diagnostic> diagnostics, const std::vector<std::string>& secrets)
    : LoadError(Ordered{}, in_file_order(masked(std::move(diagnostics), secrets))) {}

LoadError::LoadError(Ordered, std::vector<Diagnostic> diagnostics)
    : std::runtime_error(join_messages(diagnostics)), m_diagnostics(std::move(diagnostics)) {}

}  // namespace pcr::config
