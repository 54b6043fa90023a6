// The basic example (examples/basic/ci.yaml) written against the C++ API: a serial step,
// then three different commands side by side under a 3 s timeout, and a cleanup step.
// Build it with find_package(pcr) and run it: `./ci` accepts the options of `pcr run`.
#include <pcr/pcr.hpp>

#include <fmt/format.h>

#include <chrono>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  // A command is a function of the job's context: here of the command number `n`.
  pcr::Command slow_echo = [](const pcr::JobContext& job) {
    return fmt::format("echo foobar && sleep 2 && echo ran command with {}", job.number);
  };

  pcr::Pipeline pipeline;
  pipeline.name = "basic (C++)";
  pipeline.steps.push_back(pcr::run_step("serial", slow_echo));

  auto parallel = pcr::commands_step(
      "parallel", {slow_echo, pcr::command("echo command can be a string"),
                   [](const pcr::JobContext& job) {
                     return fmt::format("echo foo && sleep 10 && echo ran command with {}", job.number);
                   }});
  parallel.options.timeout = 3s;
  parallel.options.kill_grace = 1s;
  pipeline.steps.push_back(parallel);

  // An output check is a function of the job's stdout lines.
  auto greet = pcr::run_step("greeting", pcr::command("echo hello from {n}"));
  greet.options.check = [](const std::vector<std::string>& lines) {
    return !lines.empty() && lines[0] == "hello from 1";
  };
  pipeline.steps.push_back(greet);

  pipeline.cleanup.push_back(pcr::run_step("cleanup", pcr::command("echo cleaning up")));
  return pcr::run_main(argc, argv, pipeline);
}
