#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pcr::util {

// Replaces every occurrence of any of `secrets` with "***" in text that arrives in pieces:
// a secret split across two `feed` calls is still replaced, because up to (longest
// secret − 1) bytes are held back until the next piece or `flush`. Empty secrets are
// ignored; with none, text passes through untouched.
class Masker {
 public:
  Masker() = default;
  explicit Masker(std::vector<std::string> secrets);

  bool active() const { return !m_secrets.empty(); }

  // Masked text that is safe to show now.
  std::string feed(std::string_view data);
  // Whatever was held back, masked.
  std::string flush();

  // Mask a whole string at once.
  std::string mask(std::string_view text) const;
  // The same, for text that may have been cut short for display ("…"): what precedes a
  // "…" may be a secret's beginning (4 bytes or more of it), which is masked too.
  std::string mask_cut(std::string_view text) const;

 private:
  std::string drain(bool final);
  std::vector<std::string> m_secrets;  // longest first, so a longer secret wins
  size_t m_longest = 0;
  bool m_overlaps = false;  // an occurrence of one secret can overlap another's
  std::string m_pending;
};

}  // namespace pcr::util
