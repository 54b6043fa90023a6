#include <pcr/results/results.hpp>
#include <pcr/results/text.hpp>

#include <algorithm>

namespace pcr::results {

std::size_t Results::count(Outcome outcome) const {
  return static_cast<std::size_t>(std::count_if(
      tests.begin(), tests.end(), [outcome](const Test& t) { return t.outcome == outcome; }));
}

namespace detail {
namespace {

// The longest prefix of `text` of at most `n` bytes that does not end inside a UTF-8
// sequence (when `text` is valid there; invalid bytes are cut anywhere).
size_t utf8_prefix(std::string_view text, size_t n) {
  if (n >= text.size()) return text.size();
  size_t end = n;
  // Back off over continuation bytes (10xxxxxx) to the byte that starts the sequence.
  for (int i = 0; i < 3 && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80; ++i)
    --end;
  return (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80 ? n : end;
}

constexpr std::string_view k_cut = "… (cut)";

}  // namespace

std::string capped(std::string_view text, std::size_t cap) {
  if (text.size() <= cap) return std::string(text);
  std::string out(text.substr(0, utf8_prefix(text, cap)));
  out += "…";
  return out;
}

void DetailsWriter::add_line(std::string& details, std::string_view line) {
  if (!details.empty()) add(details, "\n");
  add(details, line);
}

void DetailsWriter::add(std::string& details, std::string_view text) {
  if (m_cut) return;
  const size_t room = std::min(limits::details - std::min(details.size(), limits::details), m_left);
  const size_t take = text.size() <= room ? text.size() : utf8_prefix(text, room);
  details.append(text.substr(0, take));
  m_left -= take;
  if (take < text.size()) {
    // Past a budget: say so once, and take nothing more for this test.
    details += k_cut;
    m_cut = true;
  }
}

}  // namespace detail
}  // namespace pcr::results
