#include <pcr/report/log_dir.hpp>
#include <pcr/report/sink.hpp>
#include <pcr/util/escape.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace pcr::report {

namespace fs = std::filesystem;

std::string make_private_dir(const std::string& dir) {
  std::error_code ec;
  if (!util::make_private_dirs(dir)) return dir + ": " + std::strerror(errno);
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  return ec ? dir + ": " + ec.message() : "";
}

LogDir::LogDir(std::string dir, std::vector<std::string> secrets)
    : m_dir(std::move(dir)), m_mask(secrets), m_secrets(std::move(secrets)) {}

std::string LogDir::file_name(const pipeline::JobInfo& job) const {
  const auto* step = job.step;
  // Names come from the file and the items: masked before they become a file name.
  std::string prefix = fmt::format("{}{:02}-{}", step && step->cleanup ? "c" : "s", step ? step->index : 0,
                                   util::slug(m_mask.mask(step ? step->name : "step"), 40));
  std::string name;
  if (job.kind == pipeline::JobKind::setup) {
    name = fmt::format("{}-setup-n{}", prefix, job.worker);
  } else if (job.kind == pipeline::JobKind::teardown) {
    name = fmt::format("{}-teardown-n{}", prefix, job.worker);
  } else {
    std::string items;
    for (const auto& i : job.items) items += (items.empty() ? "" : "_") + i;
    // Without items, the job's name where it says more than the step's (a `commands:`
    // job's command as written).
    const std::string step_name = step ? step->name : "";
    if (items.empty() && !job.name.empty() && job.name != step_name && job.name.rfind(step_name + " #", 0) != 0)
      items = job.name;
    name = fmt::format("{}-j{:03}{}", prefix, job.job,
                       items.empty() ? "" : "-" + util::slug(m_mask.mask(items), 60));
  }
  if (job.attempt > 0) name += fmt::format(".try{}", job.attempt + 1);
  return name + ".log";
}

void LogDir::job_finished(const pipeline::JobInfo& job, const pipeline::JobResult&) {
  auto out = Sink::open(m_dir + "/" + file_name(job), m_secrets);
  // A log is read with `cat` and `less -R`: colour stays, nothing else a terminal obeys.
  auto filter = util::AnsiStripper::terminal_safe(true);
  int in = ::open(job.spool.c_str(), O_RDONLY | O_CLOEXEC);
  if (in >= 0) {
    static char buf[256 * 1024];
    for (;;) {
      ssize_t n = ::read(in, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      std::string safe;
      filter.feed(std::string_view(buf, static_cast<size_t>(n)), safe);
      out->write(safe);
    }
    ::close(in);
  }
  out->finish();
  if (out->error().empty()) return;
  if (m_failed++ == 0) m_error = out->error();
}

std::string LogDir::error() const {
  if (m_failed <= 1) return m_error;
  return fmt::format("{} (and {} more job log{} in {})", m_error, m_failed - 1, m_failed == 2 ? "" : "s", m_dir);
}

}  // namespace pcr::report
