#pragma once

#include <cstddef>
#include <functional>
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
// What is left to read from `fd` (to its end, or `limit` bytes), or nullopt when a read
// fails (errno says why).
std::optional<std::string> read_all(int fd, std::size_t limit = std::string::npos);
// At most the first `limit` bytes of `path` (anything: a FIFO, /dev/zero), so that a
// caller with a bound never holds more than it; nullopt as `read_file`.
std::optional<std::string> read_file(const std::string& path, std::size_t limit);

// Create folder `path` and its missing parents, each made 0700 (the user's only, like
// everything pcr writes); folders already there keep their mode. False with errno set
// when one could not be made.
bool make_private_dirs(const std::string& path);

// Write `text` to `path` through a temporary file beside it (mode `mode`) renamed over it
// once whole, so that no reader ever sees half of it, whatever dies meanwhile. Returns
// "" or why not ("PATH: reason"); a failure leaves `path` as it was and no temporary file.
std::string replace_file(const std::string& path, std::string_view text, unsigned mode = 0600);

// Call `line(text, cut)` for each line of file `path` (without its '\n'; a last line
// without one counts), reading in pieces and never holding more than one line: a line
// longer than `max_line` is given as its first `max_line` bytes with `cut` set. Stops when
// `line` returns false. False when the file cannot be opened (errno says why).
bool each_line(const std::string& path, std::size_t max_line,
               const std::function<bool(std::string_view text, bool cut)>& line);

// The last `max_lines` lines of file `path`, each ending in '\n', read from at most its
// last 64 KiB (a tail of a huge log costs no more than of a small one); "" when the file
// is missing or empty.
std::string tail_lines(const std::string& path, std::size_t max_lines);

}  // namespace pcr::util
