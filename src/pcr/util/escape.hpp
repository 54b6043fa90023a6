#pragma once

#include <string>
#include <string_view>

namespace pcr::util {

// `s` as valid UTF-8: each byte that does not start a well-formed sequence becomes
// U+FFFD. Overlong forms, surrogates and code points past U+10FFFF are invalid too.
std::string valid_utf8(std::string_view s);

// Text for an XML 1.0 document (element content or attribute value): valid UTF-8, the
// five special characters as entities, and characters XML 1.0 forbids (C0 controls
// other than tab, newline and carriage return; U+FFFE, U+FFFF) replaced by U+FFFD. So
// nothing a job prints — `]]>`, NUL, invalid UTF-8 — can break the document.
std::string xml_escape(std::string_view s);

// Text for HTML element content or a quoted attribute value: like `xml_escape`, so
// `<script>` is shown as text and never run.
std::string html_escape(std::string_view s);

// A short name for files: letters, digits, '.', '-' and '_' kept, runs of anything else
// as one '_', at most `max` bytes.
std::string slug(std::string_view s, size_t max = 60);

}  // namespace pcr::util
