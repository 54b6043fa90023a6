#include <pcr/util/mask.hpp>

#include <algorithm>
#include <vector>

namespace pcr::util {

Masker::Masker(std::vector<std::string> secrets) {
  for (auto& s : secrets)
    if (!s.empty()) m_secrets.push_back(std::move(s));
  std::sort(m_secrets.begin(), m_secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  m_secrets.erase(std::unique(m_secrets.begin(), m_secrets.end()), m_secrets.end());
  for (const auto& s : m_secrets) m_longest = std::max(m_longest, s.size());
}

std::string Masker::feed(std::string_view data) {
  if (!active()) return std::string(data);
  m_pending.append(data);
  return drain(false);
}

std::string Masker::flush() { return drain(true); }

std::string Masker::drain(bool final) {
  // Positions before `limit` may be emitted: a secret starting there lies wholly inside
  // m_pending (limit is at least longest - 1 bytes from the end), so it is found now.
  const size_t hold = final ? 0 : m_longest - 1;
  if (m_pending.size() <= hold) return "";
  const size_t limit = m_pending.size() - hold;
  std::string out;
  out.reserve(limit);
  // The next occurrence of each secret at or after i, searched again only once passed:
  // the text is scanned with string::find (memchr underneath), not byte by byte.
  std::vector<size_t> next(m_secrets.size(), 0);
  std::vector<bool> known(m_secrets.size(), false);
  size_t i = 0;
  while (i < limit) {
    size_t best = std::string::npos, best_len = 0;
    for (size_t k = 0; k < m_secrets.size(); ++k) {
      if (!known[k] || next[k] < i) next[k] = m_pending.find(m_secrets[k], i), known[k] = true;
      // Longest first in m_secrets, so on a tie the longer secret wins.
      if (next[k] < best) best = next[k], best_len = m_secrets[k].size();
    }
    if (best >= limit) {
      out.append(m_pending, i, limit - i);
      i = limit;
      break;
    }
    out.append(m_pending, i, best - i);
    out += "***";
    i = best + best_len;
  }
  // A match may have run past `limit`: whatever is left stays for the next piece.
  m_pending.erase(0, i);
  return out;
}

std::string Masker::mask(std::string_view text) const {
  if (!active()) return std::string(text);
  Masker copy(m_secrets);
  std::string out = copy.feed(text);
  return out + copy.flush();
}

}  // namespace pcr::util
