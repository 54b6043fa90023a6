#include <pcr/proc/runs.hpp>
#include <pcr/proc/supervise.hpp>
#include <pcr/util/io.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace pcr::proc {

namespace fs = std::filesystem;

std::string runs_dir(const std::string& pipeline_dir) {
  return (fs::path(pipeline_dir) / ".pcr" / "runs").string();
}

std::string spool_parent() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

std::string write_run_record(const std::string& dir, const RunRecord& r) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fmt::format("{}: {}", dir, ec.message());
  // .pcr and its runs/ folder: the user's only (records name pids and the spool folder);
  // best effort, like the folder's own creation mode: the record is written either way.
  fs::permissions(dir, fs::perms::owner_all, ec);
  fs::permissions(fs::path(dir).parent_path(), fs::perms::owner_all, ec);
  nlohmann::ordered_json j;
  j["run_id"] = r.run_id;
  j["pid"] = r.pid;
  j["pid_start"] = r.pid_start;
  j["engine"] = r.engine;
  j["engine_start"] = r.engine_start;
  j["tmpdir"] = r.tmpdir;
  const std::string path = fmt::format("{}/{}.json", dir, r.run_id);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fmt::format("{}: {}", tmp, std::strerror(errno));
  const bool written = util::write_all(fd, j.dump(1) + "\n");
  const int saved = errno;
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int why = written ? errno : saved;
    ::unlink(tmp.c_str());
    return fmt::format("{}: {}", path, std::strerror(why));
  }
  return "";
}

void remove_run_record(const std::string& dir, const std::string& run_id) {
  // A record that cannot be removed is only a stale one: the next run finds its
  // processes dead and nothing left, and removes it then.
  ::unlink(fmt::format("{}/{}.json", dir, run_id).c_str());
}

namespace {
std::optional<RunRecord> parse_run_record(const std::string& path) {
  auto j = nlohmann::json::parse(util::read_file(path).value_or(""), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  RunRecord r;
  try {
    r.run_id = j.at("run_id").get<std::string>();
    r.pid = j.value("pid", 0);
    r.pid_start = j.value("pid_start", 0ULL);
    r.engine = j.value("engine", 0);
    r.engine_start = j.value("engine_start", 0ULL);
    r.tmpdir = j.value("tmpdir", "");
  } catch (const std::exception&) {
    return std::nullopt;  // not a record of ours: left alone
  }
  if (r.run_id.empty() || r.run_id.find('/') != std::string::npos) return std::nullopt;
  return r;
}
}  // namespace

std::optional<RunRecord> read_run_record(const std::string& dir, const std::string& run_id) {
  if (run_id.empty() || run_id.find('/') != std::string::npos) return std::nullopt;
  auto r = parse_run_record(fmt::format("{}/{}.json", dir, run_id));
  if (r && r->run_id != run_id) return std::nullopt;
  return r;
}

std::vector<RunRecord> dead_runs(const std::string& dir) {
  std::vector<RunRecord> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".json") continue;
    auto r = parse_run_record(it->path().string());
    if (!r || alive(r->pid, r->pid_start) || alive(r->engine, r->engine_start)) continue;
    out.push_back(std::move(*r));
  }
  return out;
}

std::vector<std::string> spool_dirs_of(const std::string& tmpdir, const std::string& run_id) {
  std::vector<std::string> out;
  if (tmpdir.empty()) return out;
  const std::string prefix = fmt::format("pcr-{}-", run_id);
  std::error_code ec;
  for (fs::directory_iterator it(tmpdir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.size() == prefix.size() + 6 &&
        it->is_directory(ec) && !it->is_symlink(ec))
      out.push_back(it->path().string());
  }
  return out;
}

RunLeftovers leftovers_of(const RunRecord& r) {
  RunLeftovers left;
  left.processes = processes_with_env("CI_RUN_ID", r.run_id);
  left.spool_dirs = spool_dirs_of(r.tmpdir, r.run_id);
  return left;
}

}  // namespace pcr::proc
