#include <pcr/util/escape.hpp>

namespace pcr::util {

namespace {

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at `s[i]`, or 0.
size_t sequence_length(std::string_view s, size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  char32_t min;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Walk `s` as UTF-8: `fn(cp, bytes, true)` for each well-formed sequence, and
// `fn(0, byte, false)` for each byte that does not start one.
template <typename Fn>
void decode(std::string_view s, Fn fn) {
  for (size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    size_t len = sequence_length(s, i, cp);
    if (len == 0) {
      fn(char32_t{0}, s.substr(i, 1), false);
      ++i;
    } else {
      fn(cp, s.substr(i, len), true);
      i += len;
    }
  }
}

std::string markup_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  decode(s, [&](char32_t cp, std::string_view bytes, bool valid) {
    if (!valid) {
      out += k_replacement;
    } else if (bytes.size() == 1) {
      char c = bytes[0];
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        case '\t': case '\n': case '\r': out += c; break;
        default:
          if (cp < 0x20 || cp == 0x7F) out += k_replacement;
          else out += c;
      }
    } else if (cp == 0xFFFE || cp == 0xFFFF || (cp >= 0x80 && cp <= 0x9F)) {
      out += k_replacement;
    } else {
      out.append(bytes);
    }
  });
  return out;
}

}  // namespace

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  decode(s, [&](char32_t, std::string_view bytes, bool valid) {
    if (valid)
      out.append(bytes);
    else
      out += k_replacement;
  });
  return out;
}

std::string xml_escape(std::string_view s) { return markup_escape(s); }
std::string html_escape(std::string_view s) { return markup_escape(s); }

std::string slug(std::string_view s, size_t max) {
  std::string out;
  bool gap = false;
  for (char c : s) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '-' || c == '_';
    if (keep) {
      if (gap && !out.empty()) out += '_';
      gap = false;
      out += c;
    } else {
      gap = true;
    }
    if (out.size() >= max) break;
  }
  while (!out.empty() && out[0] == '.') out.erase(0, 1);  // no hidden files, no ".."
  return out.empty() ? "job" : out.substr(0, max);
}

}  // namespace pcr::util
