#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pcr::util {

// Quote `word` so that /bin/sh reads it back as exactly one word with the same bytes.
// Words made only of safe characters are returned unchanged; anything else is wrapped in
// single quotes, with each embedded `'` written as `'\''`. This is the one escaper: every
// value pcr pastes into a shell string goes through it.
std::string shell_quote(std::string_view word);

// What `shell_quote` puts between the single quotes: `word` with each `'` written as
// `'\''`. How a value looks inside a quoted command, e.g. to mask it there too.
std::string shell_quote_inside(std::string_view word);

// Quote each of `words` and join them with single spaces.
std::string shell_join(const std::vector<std::string>& words);

}  // namespace pcr::util
