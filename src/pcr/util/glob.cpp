#include <pcr/util/glob.hpp>

#include <fmt/format.h>

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

namespace pcr::util {

namespace fs = std::filesystem;

namespace {

class Walk {
 public:
  Walk(const std::vector<std::string>& segs, const GlobLimits& limits)
      : m_segs(segs), m_limits(limits) {}

  // False once a limit is passed (`error` says which); the walk unwinds at once.
  bool walk(const fs::path& dir, const std::string& rel, size_t i) {
    std::error_code ec;
    if (i == m_segs.size()) return true;
    const std::string& seg = m_segs[i];
    const bool last = i + 1 == m_segs.size();
    auto join = [&](const std::string& name) { return rel.empty() ? name : rel + "/" + name; };
    if (seg == "**") {
      if (!walk(dir, rel, i + 1)) return false;  // zero directories
      for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (!count_entry()) return false;
        std::string name = it->path().filename().string();
        // symlink_status: a link to a directory is not descended into (no cycles).
        if (name[0] == '.' || !fs::is_directory(it->symlink_status(ec))) continue;
        if (!walk(it->path(), join(name), i)) return false;  // one more directory
      }
      return true;
    }
    if (seg.find_first_of("*?[") == std::string::npos) {  // a plain name: no listing
      fs::path p = dir / seg;
      if (last) {
        if (fs::is_regular_file(p, ec)) return add(join(seg));
      } else if (fs::is_directory(p, ec)) {
        return walk(p, join(seg), i + 1);
      }
      return true;
    }
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (!count_entry()) return false;
      std::string name = it->path().filename().string();
      if (::fnmatch(seg.c_str(), name.c_str(), FNM_PERIOD) != 0) continue;
      if (last) {
        if (it->is_regular_file(ec) && !add(join(name))) return false;
      } else if (it->is_directory(ec)) {
        if (!walk(it->path(), join(name), i + 1)) return false;
      }
    }
    return true;
  }

  std::set<std::string> found;
  std::string error;

 private:
  bool count_entry() {
    if (++m_entries <= m_limits.entries) return true;
    error = fmt::format("looked at more than {} directory entries; narrow the pattern",
                        m_limits.entries);
    return false;
  }
  bool add(std::string path) {
    found.insert(std::move(path));
    if (found.size() <= m_limits.matches) return true;
    error = fmt::format("matches more than {} files", m_limits.matches);
    return false;
  }

  const std::vector<std::string>& m_segs;
  const GlobLimits& m_limits;
  std::size_t m_entries = 0;
};

}  // namespace

Expected<std::vector<std::string>> glob(const std::string& base, std::string_view pattern,
                                        const GlobLimits& limits) {
  std::vector<std::string> segs;
  std::string p(pattern);
  bool absolute = !p.empty() && p[0] == '/';
  size_t start = absolute ? 1 : 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string::npos) slash = p.size();
    std::string seg = p.substr(start, slash - start);
    if (!seg.empty() && seg != ".") segs.push_back(seg);
    start = slash + 1;
  }
  // `**/**` walks the same tree once per `**` for nothing: one is the same pattern.
  segs.erase(std::unique(segs.begin(), segs.end(),
                         [](const std::string& a, const std::string& b) {
                           return a == "**" && b == "**";
                         }),
             segs.end());
  Walk walk(segs, limits);
  fs::path root = absolute ? fs::path("/") : fs::path(base.empty() ? "." : base);
  if (!walk.walk(root, "", 0))
    return Expected<std::vector<std::string>>::failure(
        fmt::format("glob '{}': {}", pattern, walk.error));
  std::vector<std::string> out;
  out.reserve(walk.found.size());
  for (const auto& f : walk.found) out.push_back(absolute ? "/" + f : f);
  return out;  // std::set already orders bytewise
}

}  // namespace pcr::util
