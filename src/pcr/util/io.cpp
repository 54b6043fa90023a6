#include <pcr/util/io.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace pcr::util {

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd room{fd, POLLOUT, 0};
        if (::poll(&room, 1, -1) >= 0 || errno == EINTR) continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::optional<std::string> read_file(const std::string& path) {
  return read_file(path, std::string::npos);
}

// Plain reads into a buffer sized by the file's length: an `ifstream` read in 64 KiB
// pieces zeroed 16 pages for a 23-byte file, at every start (pcr reads two or three
// small files before its first job).
std::optional<std::string> read_all(int fd, std::size_t limit) {
  struct stat st {};
  // A regular file says its length (one more byte shows the end); a FIFO, a device or
  // a /proc file says 0 and is read in growing pieces.
  std::size_t piece = 4096;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    piece = static_cast<std::size_t>(st.st_size) + 1;
  std::string text;
  std::size_t used = 0;
  while (used < limit) {
    if (used == text.size()) {
      text.resize(std::min(limit, used + piece));
      piece = std::clamp<std::size_t>(used, 4096, 1 << 20);
    }
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  text.resize(used);
  return text;
}

std::optional<std::string> read_file(const std::string& path, std::size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  auto text = read_all(fd, limit);
  const int error = errno;
  ::close(fd);
  errno = error;
  return text;
}

bool make_private_dirs(const std::string& path) {
  std::string at;
  std::size_t from = 0;
  while (from <= path.size()) {
    const std::size_t slash = path.find('/', from);
    const std::size_t end = slash == std::string::npos ? path.size() : slash;
    at = path.substr(0, end);
    from = end + 1;
    if (at.empty() || at == "." || at == "..") continue;
    if (::mkdir(at.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return false;
  }
  return true;
}

std::string replace_file(const std::string& path, std::string_view text, unsigned mode) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string tmp = dir + "." + path.substr(slash == std::string::npos ? 0 : slash + 1) + ".XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return tmp + ": " + std::strerror(errno);
  int err = 0;
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0 || !write_all(fd, text)) err = errno ? errno : EIO;
  // A full disk may only show at close (NFS, some quotas).
  if (::close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err == 0) return "";
  ::unlink(tmp.c_str());
  return path + ": " + std::strerror(err);
}

bool each_line(const std::string& path, std::size_t max_line,
               const std::function<bool(std::string_view text, bool cut)>& line) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string piece(64 * 1024, '\0'), current;
  bool cut = false;  // `current` is full and the rest of its line is skipped
  while (in) {
    in.read(piece.data(), static_cast<std::streamsize>(piece.size()));
    std::string_view got(piece.data(), static_cast<std::size_t>(in.gcount()));
    while (!got.empty()) {
      const auto nl = got.find('\n');
      const std::string_view part = got.substr(0, nl);
      const std::size_t room = max_line - std::min(max_line, current.size());
      if (part.size() > room) cut = true;
      current.append(part.substr(0, std::min(room, part.size())));
      if (nl == std::string_view::npos) break;
      got.remove_prefix(nl + 1);
      if (!line(current, cut)) return true;
      current.clear();
      cut = false;
    }
  }
  if (!current.empty() || cut) line(current, cut);
  return true;
}

std::string tail_lines(const std::string& path, std::size_t max_lines) {
  constexpr std::streamoff k_window = 64 * 1024;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || max_lines == 0) return "";
  const std::streamoff size = in.tellg();
  const std::streamoff from = size > k_window ? size - k_window : 0;
  in.seekg(from);
  std::string text(static_cast<std::size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (from > 0) {
    // Started mid-line: drop the partial first line.
    const auto nl = text.find('\n');
    text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
  }
  if (!text.empty() && text.back() != '\n') text += '\n';
  std::size_t at = text.size() - (text.empty() ? 0 : 1), lines = 0;
  while (at > 0) {
    const auto nl = text.rfind('\n', at - 1);
    if (nl == std::string::npos) break;
    if (++lines == max_lines) return text.substr(nl + 1);
    at = nl;
  }
  return text;
}

}  // namespace pcr::util
