#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <pcr/cli/app.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/pipeline/engine.hpp>
#include <pcr/report/console.hpp>
#include <pcr/util/duration.hpp>

#ifndef PCR_VERSION
#define PCR_VERSION "0.0.0"
#endif

namespace pcr::cli {

namespace {

constexpr int k_exit_usage = 2;

struct RunFlags {
  unsigned jobs = 0;
  std::string step;
  bool dry_run = false;
  std::string output = "grouped";
  bool no_color = false;
  std::string heartbeat = "30s";
};

void add_run_flags(CLI::App& cmd, RunFlags& f) {
  cmd.add_option("-j,--jobs", f.jobs, "At most N jobs running at once across the run")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--step", f.step, "Run only the step NAME (cleanup still runs)");
  cmd.add_flag("--dry-run", f.dry_run, "Print the plan with every command expanded; run nothing");
  cmd.add_option("--output", f.output, "grouped (default): each job's output in one piece; prefixed: every line as it arrives")
      ->check(CLI::IsMember({"grouped", "prefixed"}));
  cmd.add_flag("--no-color", f.no_color, "No colour (also: NO_COLOR set in the environment)");
  cmd.add_option("--heartbeat", f.heartbeat, "Off a terminal, print a progress line this often (default 30s)")
      ->check([](const std::string& v) {
        auto d = util::parse_duration(v);
        if (!d) return d.error();
        return d->count() > 0 ? std::string() : std::string("must be more than 0s");
      });
}

int print_plan(const pipeline::Pipeline& p, const pipeline::RunOptions& ro, bool no_color) {
  report::Style style;
  style.color = report::detect_console(1, no_color).color;
  std::cout << report::plan_text(p, pipeline::plan(p, ro), style) << std::flush;
  return 0;
}

int execute(const pipeline::Pipeline& p, const RunFlags& f) {
  pipeline::RunOptions ro;
  ro.jobs = f.jobs;
  ro.only_step = f.step;
  if (!f.step.empty() && !pipeline::has_step(p, f.step)) {
    std::string names;
    for (const auto& s : p.steps) names += (names.empty() ? "" : ", ") + fmt::format("'{}'", s.name);
    std::cerr << fmt::format("pcr: --step: no step is named '{}' (steps: {})\n", f.step, names);
    return k_exit_usage;
  }
  if (f.dry_run) return print_plan(p, ro, f.no_color);
  auto console_options = report::detect_console(1, f.no_color);
  console_options.output = f.output == "prefixed" ? report::OutputStyle::prefixed : report::OutputStyle::grouped;
  console_options.heartbeat = *util::parse_duration(f.heartbeat);
  for (const auto& name : p.secrets) {
    const char* value = std::getenv(name.c_str());
    for (const auto& [k, v] : p.env)
      if (k == name) value = v.c_str();
    if (value && *value) console_options.secrets.emplace_back(value);
  }
  report::Console console(console_options);
  pipeline::Observers observers;
  observers.add(console);
  return pipeline::run(p, ro, observers);
}

template <typename Fn>
int guarded(CLI::App& app, int argc, char** argv, Fn after_parse) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::cout << "pcr " << PCR_VERSION << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "pcr: " << e.what() << "\nRun with --help for usage.\n";
    return k_exit_usage;
  }
  try {
    return after_parse();
  } catch (const config::LoadError& e) {
    std::cerr << e.what() << "\n";
    return k_exit_usage;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pcr — the Parallel CI Runner: runs a CI pipeline's steps of shell commands, many at once"};
  app.set_version_flag("--version", std::string("pcr ") + PCR_VERSION);
  app.require_subcommand(1);

  RunFlags run_flags;
  std::string run_file = "ci.yaml";
  auto* run = app.add_subcommand("run", "Run the pipeline (default ./ci.yaml)");
  run->add_option("FILE", run_file, "The pipeline file");
  add_run_flags(*run, run_flags);

  std::string check_file = "ci.yaml";
  auto* check = app.add_subcommand("check", "Validate FILE and print the plan; exit 0 or 2");
  check->add_option("FILE", check_file, "The pipeline file");

  return guarded(app, argc, argv, [&]() -> int {
    if (*check) {
      auto p = config::load_file(check_file);
      return print_plan(p, {}, false);
    }
    auto p = config::load_file(run_file);
    return execute(p, run_flags);
  });
}

int run_main(int argc, char** argv, const pipeline::Pipeline& pipeline) {
  CLI::App app{"Run this pipeline (the options of `pcr run`)"};
  app.set_version_flag("--version", std::string("pcr ") + PCR_VERSION);
  RunFlags flags;
  add_run_flags(app, flags);
  return guarded(app, argc, argv, [&] { return execute(pipeline, flags); });
}

}  // namespace pcr::cli
