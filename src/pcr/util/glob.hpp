#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pcr::util {

// Files matching `pattern` under directory `base`, as paths relative to `base` (or absolute
// when `pattern` is), sorted bytewise. Segments match as in the shell (`*`, `?`, `[...]`,
// no leading dot unless written); a `**` segment matches any number of directories,
// including none. Only regular files (and symlinks to them) are returned.
std::vector<std::string> glob(const std::string& base, std::string_view pattern);

}  // namespace pcr::util
