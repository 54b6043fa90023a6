#include <pcr/docker/helpers.hpp>
#include <pcr/sched/timings.hpp>
#include <pcr/util/shell.hpp>

#include <algorithm>

namespace pcr::docker {

using pipeline::JobContext;

std::string docker_build(const std::string& context, const std::string& repo, const std::string& tag,
                         const std::string& dockerfile, const pipeline::Env& build_args) {
  std::vector<std::string> argv = {"docker", "build", "-t", repo + ":" + tag};
  if (!dockerfile.empty()) argv.insert(argv.end(), {"-f", dockerfile});
  for (const auto& [k, v] : build_args) argv.insert(argv.end(), {"--build-arg", k + "=" + v});
  argv.push_back(context);
  return util::shell_join(argv);
}

pipeline::Command docker_exec(std::string prefix, std::vector<std::string> argv) {
  return [prefix = std::move(prefix), argv = std::move(argv)](const JobContext& ctx) {
    std::vector<std::string> all = {"docker", "exec", prefix + std::to_string(ctx.number)};
    all.insert(all.end(), argv.begin(), argv.end());
    return util::shell_join(all);
  };
}

Compose::Compose(std::vector<std::string> files, std::string project, ComposeVersion version)
    : m_files(std::move(files)), m_project(std::move(project)), m_version(version) {}

std::string Compose::project(const JobContext& ctx) const { return project_name(m_project, ctx.run_id, ctx.number); }

pipeline::Command Compose::with(std::vector<std::string> tail) const {
  return [self = *this, tail = std::move(tail)](const JobContext& ctx) {
    auto argv = compose_argv(self.m_version, self.m_files, self.project(ctx));
    argv.insert(argv.end(), tail.begin(), tail.end());
    return util::shell_join(argv);
  };
}

pipeline::Command Compose::up(std::vector<std::string> services) const {
  std::vector<std::string> tail = {"up", "-d"};
  tail.insert(tail.end(), services.begin(), services.end());
  return with(std::move(tail));
}

pipeline::Command Compose::exec(std::string service, std::vector<std::string> argv) const {
  // Through the same wrapper as `{exec SERVICE}`, so a stopped job stops inside the
  // container too. The wrapper lives in .pcr/ of the current folder.
  return [self = *this, service = std::move(service), argv = std::move(argv)](const JobContext& ctx) {
    std::string compose = util::shell_join(compose_argv(self.m_version, self.m_files, self.project(ctx)));
    // "-": no log for pcr to stop it afterwards; the wrapper stops it within kill_grace.
    std::vector<std::string> all = {exec_wrapper(".pcr"), compose, service, "-"};
    all.insert(all.end(), argv.begin(), argv.end());
    return util::shell_join(all);
  };
}

pipeline::Command Compose::run(std::string service, std::vector<std::string> argv) const {
  std::vector<std::string> tail = {"run", "--rm", "-T", std::move(service)};
  tail.insert(tail.end(), argv.begin(), argv.end());
  return with(std::move(tail));
}

pipeline::Command Compose::down() const { return with({"down", "-v", "--remove-orphans"}); }

std::vector<std::vector<std::string>> split_into_groups(const std::vector<std::string>& files, std::size_t groups) {
  std::vector<std::int64_t> equal(files.size(), 1);
  std::vector<std::vector<std::string>> out;
  for (const auto& group : sched::balance(equal, files, groups)) {
    std::vector<std::string> names;
    for (std::size_t i : group) names.push_back(files[i]);
    std::sort(names.begin(), names.end());
    out.push_back(std::move(names));
  }
  return out;
}

}  // namespace pcr::docker
