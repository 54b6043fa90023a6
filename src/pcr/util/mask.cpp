#include <pcr/util/mask.hpp>
#include <pcr/util/cpu.hpp>

#include <algorithm>
#include <cstring>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace pcr::util {

namespace {

// Where `needle` (2 bytes or more) first occurs in `text` at or after `from`, or npos.
// Candidates are the places where both its first and its last byte match, found 32 places
// at a time; only those are compared whole. Output rarely has both at the right distance,
// so this runs at memory speed where a search by the first byte alone (std::string::find)
// compares at every occurrence of a common letter (bench/output.sh: with a secret defined,
// 1.34 of the time without, then 1.0x).
#if defined(__x86_64__)
__attribute__((target("avx2"))) std::size_t find_avx2(std::string_view text, std::size_t from,
                                                      std::string_view needle) {
  const std::size_t last = needle.size() - 1;
  const __m256i first_byte = _mm256_set1_epi8(needle.front());
  const __m256i last_byte = _mm256_set1_epi8(needle.back());
  std::size_t i = from;
  for (; i + last + 32 <= text.size(); i += 32) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(text.data() + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(text.data() + i + last));
    auto mask = static_cast<std::uint32_t>(
        _mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi8(a, first_byte), _mm256_cmpeq_epi8(b, last_byte))));
    while (mask != 0) {
      const auto at = i + static_cast<std::size_t>(__builtin_ctz(mask));
      if (std::memcmp(text.data() + at + 1, needle.data() + 1, last - 1) == 0) return at;
      mask &= mask - 1;
    }
  }
  const auto rest = text.substr(i).find(needle);
  return rest == std::string_view::npos ? rest : i + rest;
}
#endif

std::size_t find_secret(std::string_view text, std::size_t from, std::string_view needle) {
  if (from >= text.size()) return std::string_view::npos;
#if defined(__x86_64__)
  static const bool avx2 = has_avx2();
  if (avx2 && needle.size() >= 2) return find_avx2(text, from, needle);
#endif
  return text.find(needle, from);
}

}  // namespace

Masker::Masker(std::vector<std::string> secrets) {
  // A value of stars alone ("*", "**") would be found again in its own mask, so each
  // later pass (the console's, the sink's) would lengthen it: it is not masked at all.
  for (auto& s : secrets)
    if (s.find_first_not_of('*') != std::string::npos) m_secrets.push_back(std::move(s));
  std::sort(m_secrets.begin(), m_secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  m_secrets.erase(std::unique(m_secrets.begin(), m_secrets.end()), m_secrets.end());
  for (const auto& s : m_secrets) m_longest = std::max(m_longest, s.size());
  // Whether two occurrences can overlap: the end of one secret is the beginning of one.
  for (const auto& a : m_secrets)
    for (const auto& b : m_secrets)
      for (std::size_t len = 1; len < std::min(a.size(), b.size()) && !m_overlaps; ++len)
        m_overlaps = a[a.size() - len] == b[0] && a.compare(a.size() - len, len, b, 0, len) == 0;
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
  // The next occurrence of each secret at or after i, searched again only once passed.
  std::vector<size_t> next(m_secrets.size(), 0);
  std::vector<bool> known(m_secrets.size(), false);
  size_t i = 0;
  while (i < limit) {
    size_t best = std::string::npos, best_len = 0;
    for (size_t k = 0; k < m_secrets.size(); ++k) {
      if (!known[k] || next[k] < i) next[k] = find_secret(m_pending, i, m_secrets[k]), known[k] = true;
      // Longest first in m_secrets, so on a tie the longer secret wins.
      if (next[k] < best) best = next[k], best_len = m_secrets[k].size();
    }
    if (best >= limit) {
      out.append(m_pending, i, limit - i);
      i = limit;
      break;
    }
    // Secrets that overlap this one (`abcd` and `cdef` in `abcdef`) are masked with it, as
    // one: masking one alone would show the rest of the other. Each is looked for only
    // where it could overlap, so many matches cost no more than one each.
    size_t end = best + best_len;
    for (bool grew = m_overlaps; grew;) {
      grew = false;
      for (const auto& secret : m_secrets) {
        const std::string_view window(m_pending.data(), std::min(m_pending.size(), end - 1 + secret.size()));
        for (size_t at = find_secret(window, best + 1, secret); at < end; at = find_secret(window, at + 1, secret))
          if (at + secret.size() > end) end = at + secret.size(), grew = true;
      }
    }
    // One could still start inside it and end in bytes yet to come: wait for them.
    if (m_overlaps && end + hold > m_pending.size()) {
      out.append(m_pending, i, best - i);
      i = best;
      break;
    }
    out.append(m_pending, i, best - i);
    out += "***";
    i = end;
  }
  // A match may have run past `limit`: whatever is left stays for the next piece.
  m_pending.erase(0, i);
  return out;
}

std::string Masker::mask(std::string_view text) const {
  if (!active()) return std::string(text);
  Masker copy = *this;  // the secrets as sorted and studied once, nothing pending
  copy.m_pending.clear();
  std::string out = copy.feed(text);
  return out + copy.flush();
}

std::string Masker::mask_cut(std::string_view text) const {
  std::string out = mask(text);
  if (!active()) return out;
  constexpr std::string_view k_cut = "…";
  constexpr std::size_t k_shortest = 4;  // a shorter beginning tells next to nothing
  for (std::size_t cut = out.find(k_cut); cut != std::string::npos; cut = out.find(k_cut, cut + 1))
    for (const auto& secret : m_secrets)
      for (std::size_t len = std::min(secret.size(), cut); len >= k_shortest; --len)
        if (out.compare(cut - len, len, secret, 0, len) == 0) {
          out.replace(cut - len, len, "***");
          cut = cut - len + 3;
          break;
        }
  return out;
}

}  // namespace pcr::util
