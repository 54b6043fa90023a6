#include <pcr/report/html.hpp>
#include <pcr/report/junit.hpp>
#include <pcr/session/outputs.hpp>
#include <pcr/util/duration.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <tuple>

namespace pcr::session {

namespace {

// Why `path` cannot be written as a report (or, `folder`, made as --log-dir), or "":
// what is there must be writable (and a folder, or not one), and what is not must have a
// writable folder to be made in.
std::string unusable_output(const std::string& path, bool folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (fs::exists(p, ec)) {
    if (folder != fs::is_directory(p, ec)) return path + (folder ? ": not a folder" : ": is a folder");
    if (::access(path.c_str(), W_OK) != 0) return path + ": " + std::strerror(errno);
    return "";
  }
  // The nearest folder that exists is where it (or its first missing folder) would be made.
  fs::path parent = fs::absolute(p, ec).parent_path();
  while (!parent.empty() && !fs::exists(parent, ec) && parent != parent.parent_path()) {
    if (!folder) return path + ": " + std::strerror(ENOENT);  // a report's folder is not made
    parent = parent.parent_path();
  }
  if (!fs::is_directory(parent, ec)) return path + ": " + std::strerror(ENOTDIR);
  if (::access(parent.c_str(), W_OK | X_OK) != 0) return path + ": " + std::strerror(errno);
  return "";
}

}  // namespace

Outputs::Outputs(const RunFlags& flags, std::vector<std::string> secrets)
    : m_flags(flags),
      m_secrets(std::move(secrets)),
      m_console_options(report::detect_console(1, flags.no_color)),
      m_stdout(1, "stdout", m_secrets, false),
      m_recorder(m_secrets) {
  m_console_options.output =
      flags.output == "prefixed" ? report::OutputStyle::prefixed : report::OutputStyle::grouped;
  m_console_options.heartbeat = *util::parse_duration(flags.heartbeat);
  m_console_options.secrets = m_secrets;
  m_console_options.sink = &m_stdout;
  m_sinks.push_back(&m_stdout);
  // Every failure to write so far: the summary's last line tells the exit code it causes.
  m_console_options.final_word = [this](const pipeline::RunResult& r) -> std::pair<int, std::string> {
    const auto errors = write_errors(r.output_error);
    if (errors.empty()) return {r.exit_code, ""};
    // A failed run keeps its own exit code; the loss is said either way.
    return {r.exit_code != 0 ? r.exit_code : k_exit_internal, "could not write " + errors.front()};
  };
  m_console = std::make_unique<report::Console>(m_console_options);
}

int Outputs::fail(const std::string& flag, const std::string& why) const {
  std::cerr << fmt::format("pcr: {}: {}\n", flag, why);
  return k_exit_usage;
}

std::vector<std::string> Outputs::write_errors(const std::string& lost_output) const {
  std::vector<std::string> errors;
  for (auto* sink : m_sinks)
    if (!sink->error().empty()) errors.push_back(sink->error());
  if (m_log_dir && !m_log_dir->error().empty()) errors.push_back(m_log_dir->error());
  for (const auto& e : m_report_errors) errors.push_back(e);
  if (!lost_output.empty()) errors.push_back("a job's output to " + lost_output);
  return errors;
}

int Outputs::open() {
  const RunFlags& f = m_flags;
  // Every file is opened before the run, so a bad path stops it before anything ran; and
  // every path is looked at before any is opened (exit 2 means nothing was touched).
  for (const auto& [flag, path, folder] : {std::tuple<std::string, std::string, bool>{"--log-dir", f.log_dir, true},
                                           {"--json", f.json, false},
                                           {"--junit", f.junit, false},
                                           {"--html", f.html, false}}) {
    if (path.empty()) continue;
    if (const std::string why = unusable_output(path, folder); !why.empty()) return fail(flag, why);
  }
  if (const int code = open_log_dir()) return code;
  if (!f.json.empty()) {
    auto opened = report::JsonEvents::open(f.json, m_secrets);
    if (!opened) return fail("--json", opened.error());
    m_json = std::move(*opened);
    m_sinks.push_back(&m_json->sink());
    m_observers.add(*m_json);
  }
  if (const int code = open_reports()) return code;
  m_observers.add(m_lost_output);
  // The consoles last: when they write the summary, the reports have been written, so its
  // last line knows whether writing them failed.
  if (m_run_log) m_observers.add(*m_run_log);
  m_observers.add(*m_console);
  return 0;
}

int Outputs::open_log_dir() {
  const std::string& dir = m_flags.log_dir;
  if (dir.empty()) return 0;
  std::string error = report::make_private_dir(dir);
  if (!error.empty()) return fail("--log-dir", error);
  m_run_log_sink = report::Sink::open(dir + "/run.log", m_secrets);
  if (!m_run_log_sink->error().empty()) return fail("--log-dir", m_run_log_sink->error());
  m_sinks.push_back(m_run_log_sink.get());
  report::ConsoleOptions plain;
  plain.fd = -1;
  plain.sink = m_run_log_sink.get();
  plain.output = m_console_options.output;
  plain.heartbeat = m_console_options.heartbeat;
  plain.secrets = m_secrets;
  plain.final_word = m_console_options.final_word;
  m_run_log = std::make_unique<report::Console>(plain);
  m_log_dir = std::make_unique<report::LogDir>(dir, m_secrets);
  m_observers.add(*m_log_dir);
  std::error_code ec;
  const std::string absolute = std::filesystem::absolute(dir, ec).string();
  m_recorder.set_log_paths([this, absolute](const pipeline::JobInfo& job) {
    return absolute + "/" + m_log_dir->file_name(job);
  });
  return 0;
}

int Outputs::open_reports() {
  for (const auto& [flag, path, render] :
       {std::tuple<std::string, std::string, std::string (*)(const report::RunRecord&)>{
            "--junit", m_flags.junit, report::junit_xml},
        {"--html", m_flags.html, report::html_report}}) {
    if (path.empty()) continue;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      // A device or a pipe (/dev/stdout): written as it goes, there is no file to replace.
      m_report_sinks.push_back(report::Sink::open(path, m_secrets));
      report::Sink* sink = m_report_sinks.back().get();
      if (!sink->error().empty()) return fail(flag, sink->error());
      m_sinks.push_back(sink);
      m_recorder.add_sink([sink, render = render](const report::RunRecord& record) {
        sink->write(render(record));
        sink->finish();
      });
      continue;
    }
    // Half a report is worse than none (a CI system would read a cut XML file as the
    // run's results), and so is the last run's: the file is written whole beside its
    // place and renamed over it at the end, and an earlier run's goes now. Whatever dies
    // meanwhile, a reader finds this run's report or none.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail(flag, path + ": " + std::strerror(errno));
    m_recorder.add_sink([this, render = render, path = path](const report::RunRecord& record) {
      const std::string error = util::replace_file(path, util::Masker(m_secrets).mask(render(record)));
      if (!error.empty()) m_report_errors.push_back(error);
    });
  }
  if (!m_flags.junit.empty() || !m_flags.html.empty()) m_observers.add(m_recorder);
  return 0;
}

bool Outputs::finish() {
  for (auto* sink : m_sinks) sink->finish();
  const std::vector<std::string> errors = write_errors(m_lost_output.error);
  for (const auto& e : errors) std::cerr << fmt::format("pcr: error: could not write {}\n", util::visible(e));
  return errors.empty();
}

}  // namespace pcr::session
