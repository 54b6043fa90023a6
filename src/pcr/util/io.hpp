#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pcr::util {

// Write all of `data` to `fd`, retrying on EINTR and short writes. Returns false when the
// descriptor refused (a full disk, a closed pipe); callers decide whether that matters.
bool write_all(int fd, std::string_view data);

// The whole content of file `path`, or nullopt when it cannot be opened (errno says why).
std::optional<std::string> read_file(const std::string& path);

}  // namespace pcr::util
