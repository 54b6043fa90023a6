#include <pcr/cli/app.hpp>
#include <pcr/cli/split.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/pipeline/engine.hpp>
#include <pcr/sched/timings.hpp>
#include <pcr/session/run.hpp>
#include <pcr/util/duration.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/mask.hpp>
#include <pcr/util/text.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <iostream>
#include <optional>
#include <string>

#ifndef PCR_VERSION
#define PCR_VERSION "0.0.0"
#endif

// The command line: flags parsed, subcommands dispatched, errors mapped to exit codes.
// What a run does is the session's (session/run.hpp).

namespace pcr::cli {

namespace {

using session::k_exit_internal;
using session::k_exit_usage;
using session::RunFlags;

// A whole number from 1 to a million (-j, --total, --index). CLI11's own PositiveNumber
// words a refusal as "not in range 0.000000 to 1797…" with 300 digits.
constexpr std::size_t k_most = 1'000'000;
const CLI::Validator k_count(
    [](std::string& value) -> std::string {
      std::size_t n = 0;
      const char* end = value.data() + value.size();
      const auto [stop, ec] = std::from_chars(value.data(), end, n);
      if ((ec == std::errc::result_out_of_range && stop == end) || (ec == std::errc() && stop == end && n > k_most))
        return fmt::format("'{}' is too large (at most {})", util::visible(value), k_most);
      if (ec != std::errc() || stop != end || n == 0)
        return fmt::format("give a whole number of 1 or more, not '{}'", util::visible(value));
      return "";
    },
    "N>=1");

void add_run_flags(CLI::App& cmd, RunFlags& f) {
  cmd.add_option("-j,--jobs", f.jobs, "At most N jobs running at once across the run")
      ->check(k_count);
  cmd.add_option("--step", f.step, "Run only the step NAME (cleanup still runs)");
  cmd.add_flag("--dry-run", f.dry_run, "Print the plan with every command expanded; run nothing");
  cmd.add_option(
         "--output", f.output,
         "grouped (default): each job's output in one piece; prefixed: every line as it arrives")
      ->check(CLI::IsMember({"grouped", "prefixed"}));
  cmd.add_flag("--no-color", f.no_color, "No colour (also: NO_COLOR set in the environment)");
  cmd.add_option("--timings", f.timings,
                 "Recorded job durations, read to order the queue and written after the run "
                 "(default: .pcr/timings.json beside the pipeline file)");
  cmd.add_option(
      "--log-dir", f.log_dir,
      "Write each job's output to a file of its own in DIR, and the console's to DIR/run.log");
  cmd.add_option("--junit", f.junit, "Write a JUnit XML report to FILE");
  cmd.add_option("--json", f.json, "Write the run's events to FILE as JSON lines");
  cmd.add_option("--html", f.html, "Write a self-contained HTML report with a timeline to FILE");
  cmd.add_flag("--fail-on-flaky", f.fail_on_flaky,
               "A job that passes only on a retry fails its step");
  cmd.add_option(
      "--shard", f.shard,
      "Run only shard I of N (1-based, e.g. 2/4) of every for_each step's items, as `pcr split` "
      "chooses them; `auto` reads CI_NODE_INDEX/CI_NODE_TOTAL, CIRCLE_NODE_*, "
      "BUILDKITE_PARALLEL_JOB*");
  cmd.add_flag("--rerun-failed", f.rerun_failed,
               "Run only the for_each items that did not pass in the last run of this pipeline (and shard), "
               "and every other step as usual");
  cmd.add_option("--only", f.only,
                 "Run only the for_each items matching PATTERN (a shell glob; repeatable), every other step as usual")
      ->type_name("PATTERN")
      ->allow_extra_args(false);  // one pattern each, and `[ab]` is a glob, not CLI11's list
  cmd.add_flag("--keep-clusters", f.keep_clusters,
               "Keep the compose clusters up after the run, under stable names, and reuse them in the next "
               "--keep-clusters run (local runs only: ignored under CI=true)");
  cmd.add_option("--queue", f.queue,
                 "Share every for_each step's items with the build's other machines through Redis: "
                 "redis://HOST:PORT/NAME, the same NAME on every machine of the build")
      ->type_name("URL");
  cmd.add_option("--queue-timeout", f.queue_timeout,
                 "With --queue: a machine silent this long (killed, cut off, stopped) loses its items to the "
                 "others (default 30s)");
  cmd.add_option("--queue-machine", f.queue_machine,
                 "With --queue: this machine's name in the build's results (default: host name and pid)");
  cmd.add_flag("--require-all-hosts", f.require_all_hosts,
               "Fail the run when a docker host of `hosts:` is unreachable at the start");
  cmd.add_option("--heartbeat", f.heartbeat,
                 "Off a terminal, print a progress line this often (default 30s)")
      ->check([](const std::string& v) {
        auto d = util::parse_duration(v);
        if (!d) return d.error();
        return d->count() > 0 ? std::string() : std::string("must be more than 0s");
      });
}

template <typename Fn>
int guarded(CLI::App& app, int argc, char** argv, Fn after_parse) {
  // Help and the version are output like any other: a failure to write them is an error.
  const auto printed = [](const std::string& text) {
    std::cout << text << std::flush;
    if (std::cout) return 0;
    std::cerr << "pcr: error: could not write to standard output\n";
    return k_exit_internal;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return printed(app.help());
  } catch (const CLI::CallForAllHelp&) {
    return printed(app.help("", CLI::AppFormatMode::All));
  } catch (const CLI::CallForVersion&) {
    return printed(std::string("pcr ") + PCR_VERSION + "\n");
  } catch (const CLI::ParseError& e) {
    std::cerr << "pcr: " << e.what() << "\nRun with --help for usage.\n";
    return k_exit_usage;
  }
  try {
    return after_parse();
  } catch (const config::LoadError& e) {
    std::cerr << e.what() << "\n";
    return k_exit_usage;
  } catch (...) {
    return session::exit_code_after(std::current_exception());
  }
}

// `pcr timings merge`: the shards' timings files into `out`.
int merge_timings(const std::string& merge_out, const std::vector<std::string>& merge_files) {
  std::vector<sched::Timings::Pipelines> tables;
  for (const auto& file : merge_files) {
    auto text = util::read_file(file);
    if (!text) {
      std::cerr << fmt::format("pcr timings merge: {}: {}\n", file, std::strerror(errno));
      return k_exit_usage;
    }
    sched::Timings::Pipelines table;
    if (!sched::Timings::parse(*text, table)) {
      std::cerr << fmt::format("pcr timings merge: {}: not a pcr timings file\n", file);
      return k_exit_usage;
    }
    tables.push_back(std::move(table));
  }
  std::string error = sched::merge_shard_files(merge_out, tables);
  if (!error.empty()) {
    std::cerr << "pcr timings merge: " << error << "\n";
    return 1;
  }
  std::size_t entries = 0;
  for (const auto& t : tables)
    for (const auto& [pipeline, steps] : t)
      for (const auto& [step, e] : steps) entries += e.size();
  std::cout << fmt::format("pcr timings merge: {} file(s), {} entries, into {}\n",
                           tables.size(), entries, merge_out);
  return 0;
}

// `pcr split`: this shard's share of the items (from the flags or stdin).
int split_items_command(std::size_t split_total, std::size_t split_index, const std::string& split_timings,
                        const std::string& split_step, std::vector<std::string> split_items) {
  Shard shard;
  auto env_shard = shard_from_env();
  if (split_total == 0 && split_index == 0 && !env_shard) {
    std::cerr << "pcr split: " << env_shard.error() << "\n";
    return k_exit_usage;
  }
  // A bad pair in the environment does not matter when the flags say it all.
  const std::optional<Shard> from_env = env_shard ? *env_shard : std::nullopt;
  shard.total = split_total > 0 ? split_total : from_env ? from_env->total : 0;
  if (split_index > 0)
    shard.index = split_index - 1;
  else if (from_env)
    shard.index = from_env->index;
  else
    shard.index = static_cast<std::size_t>(-1);
  if (shard.total == 0) {
    std::cerr << "pcr split: --total: give the number of shards (or set CI_NODE_TOTAL)\n";
    return k_exit_usage;
  }
  if (shard.index >= shard.total) {
    std::cerr << fmt::format("pcr split: --index: give this shard's number, 1 to {}\n",
                             shard.total);
    return k_exit_usage;
  }
  if (split_items.empty()) {
    // Read as a stream, within bounds: stdin may be anything (a runaway command).
    constexpr std::size_t k_items = 1'000'000;
    std::string bad;
    std::size_t line_number = 0;
    util::each_line("/dev/stdin", pipeline::max_line_bytes, [&](std::string_view line, bool cut) {
      ++line_number;
      if (cut)
        bad = fmt::format("line {} is longer than the {} MiB an item may have", line_number,
                          pipeline::max_line_bytes >> 20);
      else if (!line.empty() && split_items.size() == k_items)
        bad = fmt::format("more than {} items", k_items);
      else if (!line.empty())
        split_items.emplace_back(line);
      return bad.empty();
    });
    if (!bad.empty()) {
      std::cerr << "pcr split: stdin: " << bad << "\n";
      return k_exit_usage;
    }
  }
  std::string warning;
  auto timings = sched::Timings::load_any(split_timings, &warning);
  if (!warning.empty()) std::cerr << "pcr split: " << warning << "\n";
  for (const auto& item :
       sched::shard_items(split_items, timings, split_step, shard.index, shard.total))
    std::cout << item << "\n";
  return 0;
}

constexpr const char* k_about =
    "pcr — the Parallel CI Runner: runs a CI pipeline's steps of shell commands, many at once";

// `pcr [--version] run …` as the whole app declares it.
CLI::App* add_run(CLI::App& app, std::string& file, RunFlags& flags) {
  app.set_version_flag("--version", std::string("pcr ") + PCR_VERSION);
  app.require_subcommand(1);
  auto* run = app.add_subcommand("run", "Run the pipeline (default ./ci.yaml)");
  run->add_option("FILE", file, "The pipeline file");
  add_run_flags(*run, flags);
  return run;
}

int run_file(const std::string& file, const RunFlags& flags) {
  auto machine = config::docker_machine();
  machine.keep_clusters = session::keep_clusters(flags);
  const std::string text = config::read_pipeline_file(file);
  auto p = config::load_string(text, file, machine);
  return session::execute(p, flags, &text);
}

}  // namespace

int main(int argc, char** argv) {
  RunFlags run_flags;
  std::string run_path = "ci.yaml";
  if (argc > 1 && std::string_view(argv[1]) == "run") {
    // The supervisor forks its engine before anything else is done (parsing, loading), so
    // that the fork copies little; everything below runs in the engine. Which parses
    // `pcr run` alone: the other commands' options would cost every run their making.
    if (const auto code = session::supervise_first()) return *code;
    CLI::App app{k_about};
    add_run(app, run_path, run_flags);
    return guarded(app, argc, argv, [&] { return run_file(run_path, run_flags); });
  }
  CLI::App app{k_about};
  auto* run = add_run(app, run_path, run_flags);

  std::string check_file = "ci.yaml";
  std::string check_timings;
  auto* check = app.add_subcommand("check", "Validate FILE and print the plan; exit 0 or 2");
  check->add_option("FILE", check_file, "The pipeline file");
  check->add_option("--timings", check_timings, "Recorded job durations to plan with");
  std::string check_shard;
  check->add_option("--shard", check_shard, "Plan shard I/N (or auto) of every for_each step, as `pcr run --shard`");
  bool check_json = false;
  check->add_flag("--json", check_json, "Print the plan as JSON (steps, workers, each job's command)");

  std::string clean_file = "ci.yaml";
  auto* clean = app.add_subcommand("clean",
                                   "End what a killed run left behind: its processes, its spool "
                                   "folder and its compose projects (recorded in .pcr/ beside "
                                   "FILE)");
  clean->add_option("FILE", clean_file,
                    "The pipeline file (default ./ci.yaml); only its folder matters");

  std::size_t split_total = 0, split_index = 0;
  std::string split_timings = ".pcr/timings.json", split_step;
  std::vector<std::string> split_items;
  auto* split = app.add_subcommand(
      "split",
      "Print this machine's share of ITEMS (or of stdin's lines), balanced by recorded timings; "
      "the same on every machine");
  split
      ->add_option("--total", split_total,
                   "Number of shards (default: from CI_NODE_TOTAL, CIRCLE_NODE_TOTAL, "
                   "BUILDKITE_PARALLEL_JOB_COUNT)")
      ->check(k_count);
  split
      ->add_option("--index", split_index,
                   "This shard, 1-based (default: from CI_NODE_INDEX (1-based), "
                   "CIRCLE_NODE_INDEX or BUILDKITE_PARALLEL_JOB (0-based))")
      ->check(k_count);
  split->add_option("--timings", split_timings,
                    "Recorded job durations (default .pcr/timings.json)");
  split->add_option("--step", split_step, "Use the timings of this step (default: any step's)");
  split->add_option("ITEMS", split_items,
                    "The items; read from stdin, one per line, when none is given");

  session::ReportFlags report_flags;
  auto* report = app.add_subcommand(
      "report", "Print the result of a build run by several machines from one queue (`pcr run --queue`)");
  report->add_option("--queue", report_flags.queue, "The build's queue: redis://HOST:PORT/NAME")
      ->type_name("URL")
      ->required();
  report->add_option("--timeout", report_flags.timeout,
                     "Wait at most this long for the machines still running (default 30m)");
  report->add_option("--junit", report_flags.junit, "Write the whole build's JUnit XML report to FILE");
  report->add_option("--json", report_flags.json, "Write the whole build's items as one JSON document to FILE");
  report->add_option("--html", report_flags.html, "Write a self-contained HTML page of the whole build to FILE");

  std::string merge_out = ".pcr/timings.json";
  std::vector<std::string> merge_files;
  auto* timings_cmd = app.add_subcommand("timings", "Work with recorded timings files");
  timings_cmd->require_subcommand(1);
  auto* merge =
      timings_cmd->add_subcommand("merge",
                                  "Combine the timings files that the shards of a run (`pcr run "
                                  "--shard`) brought back into OUT, the "
                                  "file they all started from: each shard's changes are kept");
  merge->add_option("-o,--output", merge_out,
                    "The combined file, read first as the shards' common start "
                    "(default .pcr/timings.json)");
  merge->add_option("FILE", merge_files, "The shards' timings files")->required();

  return guarded(app, argc, argv, [&]() -> int {
    if (*merge) return merge_timings(merge_out, merge_files);
    if (*check) {
      pipeline::RunOptions ro;
      ro.timings = check_timings;
      if (!session::apply_shard(check_shard, ro)) return k_exit_usage;
      auto p = config::load_file(check_file, config::docker_machine());
      int code = session::print_plan(p, ro, false, check_json);
      const util::Masker mask(config::secret_values(p));
      for (const auto& ext : p.extensions)
        if (ext.check)
          for (const auto& warning : ext.check())
            (check_json ? std::cerr : std::cout) << util::visible(mask.mask(warning)) << "\n";
      return code;
    }
    if (*report) return session::report_queue(report_flags);
    if (*clean) {
      return session::clean(clean_file);
    }
    if (*split) return split_items_command(split_total, split_index, split_timings, split_step, split_items);
    if (*run) return run_file(run_path, run_flags);
    return k_exit_usage;  // require_subcommand(1): not reached
  });
}

int run_main(int argc, char** argv, const pipeline::Pipeline& pipeline) {
  CLI::App app{"Run this pipeline (the options of `pcr run`)"};
  app.set_version_flag("--version", std::string("pcr ") + PCR_VERSION);
  RunFlags flags;
  add_run_flags(app, flags);
  return guarded(app, argc, argv, [&] { return session::execute(pipeline, flags); });
}

}  // namespace pcr::cli
