// libFuzzer target: the secret masker. Input: secrets, then the text, then how to cut it.
// Streaming the text in any pieces must give exactly what masking it whole gives.
#include <pcr/util/assert.hpp>
#include <pcr/util/mask.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Layout: secrets separated by '\n' up to a "\n\n", then the text; the text's own bytes
  // choose the cuts (a cut after every byte whose low bits are 0).
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t end = all.find("\n\n");
  if (end == std::string_view::npos) return 0;
  std::vector<std::string> secrets;
  for (size_t start = 0; start < end;) {
    size_t nl = all.find('\n', start);
    if (nl == std::string_view::npos || nl > end) nl = end;
    secrets.emplace_back(all.substr(start, nl - start));
    start = nl + 1;
  }
  const std::string_view text = all.substr(end + 2);
  pcr::util::Masker whole(secrets);
  const std::string expected = whole.mask(text);
  pcr::util::Masker streamed(secrets);
  std::string got;
  size_t from = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 3) == 0) {
      got += streamed.feed(text.substr(from, i + 1 - from));
      from = i + 1;
    }
  }
  got += streamed.feed(text.substr(from));
  got += streamed.flush();
  PCR_ASSERT(got == expected);
  return 0;
}
