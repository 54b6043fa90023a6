#include <pcr/util/shell.hpp>

namespace pcr::util {

namespace {
bool is_safe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-' || c == '.' || c == '/' || c == ':' || c == ',' || c == '+' ||
         c == '=' || c == '@' || c == '%';
}
}  // namespace

std::string shell_quote(std::string_view word) {
  bool safe = !word.empty();
  for (char c : word) safe = safe && is_safe(c);
  // A leading '=' or '%' is harmless, but '-' or '~' style surprises are not ours to fix:
  // a word is passed as a word, and option parsing is the command's business.
  if (safe) return std::string(word);
  return '\'' + shell_quote_inside(word) + '\'';
}

std::string shell_quote_inside(std::string_view word) {
  std::string out;
  out.reserve(word.size());
  for (char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out;
}

std::string shell_join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += shell_quote(w);
  }
  return out;
}

}  // namespace pcr::util
