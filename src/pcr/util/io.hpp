#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pcr::util {

// Write all of `data` to `fd`, retrying on EINTR and short writes, and waiting for room
// when `fd` is non-blocking (a parent may have made a shared pipe so: EAGAIN then means
// "not yet", not a failure). Returns false when the descriptor refused (a full disk, a
// closed pipe); callers decide whether that matters.
bool write_all(int fd, std::string_view data);

// The whole content of file `path`, or nullopt when it cannot be opened (errno says why).
std::optional<std::string> read_file(const std::string& path);

// The last `max_lines` lines of file `path`, each ending in '\n', read from at most its
// last 64 KiB (a tail of a huge log costs no more than of a small one); "" when the file
// is missing or empty.
std::string tail_lines(const std::string& path, std::size_t max_lines);

}  // namespace pcr::util
