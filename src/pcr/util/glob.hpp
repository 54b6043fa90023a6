#pragma once

#include <pcr/util/expected.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pcr::util {

struct GlobLimits {
  std::size_t matches = 100'000;   // more matching files than this is an error
  std::size_t entries = 2'000'000;  // directory entries looked at, matching or not
};

// Files matching `pattern` under directory `base`, as paths relative to `base` (or absolute
// when `pattern` is), sorted bytewise. Segments match as in the shell (`*`, `?`, `[...]`,
// no leading dot unless written); a `**` segment matches any number of directories,
// including none. Only regular files (and symlinks to them) are returned.
//
// `**` does not descend into symlinked directories (as git and bash's globstar), so a link
// cycle cannot make it loop; a named or wildcard segment follows a link, which can only go
// as deep as the pattern is long. Time is proportional to the tree walked, and bounded by
// `limits`: past either bound the walk stops and the result is an error saying which.
Expected<std::vector<std::string>> glob(const std::string& base, std::string_view pattern,
                                        const GlobLimits& limits = {});

}  // namespace pcr::util
