#include <algorithm>
#include <pcr/util/mask.hpp>

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
  const size_t hold = final ? 0 : m_longest - 1;
  std::string out;
  size_t i = 0;
  while (m_pending.size() - i > hold) {
    bool matched = false;
    for (const auto& s : m_secrets) {
      if (m_pending.compare(i, s.size(), s) == 0) {
        out += "***";
        i += s.size();
        matched = true;
        break;
      }
    }
    if (!matched) out += m_pending[i++];
  }
  // A full secret inside the held-back tail is still found: the next piece or flush sees it.
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
