#pragma once

#include <pcr/pipeline/events.hpp>
#include <pcr/util/mask.hpp>

#include <string>

namespace pcr::report {

// `--log-dir DIR`: one file per job attempt, named for its step, job number and items
// (`s02-specs-j003-spec_a_spec.rb.log`; a retry adds `.try2`; set-ups and tear-downs
// `s02-specs-setup-n1.log`), holding its output — stdout and stderr in arrival order —
// with secrets masked. DIR is created private (0700), files 0600. The console's own
// text goes to DIR/run.log through a second Console (see cli).
class LogDir : public pipeline::Observer {
 public:
  LogDir(std::string dir, std::vector<std::string> secrets);
  void job_finished(const pipeline::JobInfo&, const pipeline::JobResult&) override;

  // The file name for `job`.
  std::string file_name(const pipeline::JobInfo& job) const;

  // The first file that could not be written and why, and how many more failed ("" when
  // none): one line however many jobs' logs a full disk refused.
  std::string error() const;

 private:
  std::string m_dir;
  util::Masker m_mask;
  std::vector<std::string> m_secrets;
  std::string m_error;
  std::size_t m_failed = 0;
};

// Create `dir` (and parents) readable by the user only. Returns "" or the error.
std::string make_private_dir(const std::string& dir);

}  // namespace pcr::report
