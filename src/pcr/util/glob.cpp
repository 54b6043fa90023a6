#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <pcr/util/glob.hpp>
#include <set>
#include <system_error>

namespace pcr::util {

namespace fs = std::filesystem;

namespace {

void walk(const fs::path& dir, const std::string& rel, const std::vector<std::string>& segs,
          size_t i, std::set<std::string>& out) {
  std::error_code ec;
  if (i == segs.size()) return;
  const std::string& seg = segs[i];
  const bool last = i + 1 == segs.size();
  auto join = [&](const std::string& name) { return rel.empty() ? name : rel + "/" + name; };
  if (seg == "**") {
    walk(dir, rel, segs, i + 1, out);  // zero directories
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name[0] == '.' || !it->is_directory(ec)) continue;
      walk(it->path(), join(name), segs, i, out);  // one more directory
    }
    return;
  }
  if (seg.find_first_of("*?[") == std::string::npos) {  // a plain name: no listing
    fs::path p = dir / seg;
    if (last) {
      if (fs::is_regular_file(p, ec)) out.insert(join(seg));
    } else if (fs::is_directory(p, ec)) {
      walk(p, join(seg), segs, i + 1, out);
    }
    return;
  }
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (::fnmatch(seg.c_str(), name.c_str(), FNM_PERIOD) != 0) continue;
    if (last) {
      if (it->is_regular_file(ec)) out.insert(join(name));
    } else if (it->is_directory(ec)) {
      walk(it->path(), join(name), segs, i + 1, out);
    }
  }
}

}  // namespace

std::vector<std::string> glob(const std::string& base, std::string_view pattern) {
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
  std::set<std::string> found;
  fs::path root = absolute ? fs::path("/") : fs::path(base.empty() ? "." : base);
  walk(root, absolute ? "" : "", segs, 0, found);
  std::vector<std::string> out;
  for (const auto& f : found) out.push_back(absolute ? "/" + f : f);
  return out;  // std::set already orders bytewise
}

}  // namespace pcr::util
