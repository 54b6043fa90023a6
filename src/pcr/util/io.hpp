#pragma once

#include <string_view>

namespace pcr::util {

// Write all of `data` to `fd`, retrying on EINTR and short writes. Returns false when the
// descriptor refused (a full disk, a closed pipe); callers decide whether that matters.
bool write_all(int fd, std::string_view data);

}  // namespace pcr::util
