// The compose example (examples/compose/ci.yaml) in C++: four isolated clusters of an app
// and its PostgreSQL, the test files split across them, everything torn down at the end.
// Run it from examples/compose/: `ci` accepts the options of `pcr run`.
#include <pcr/pcr.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path here = fs::current_path();

  pcr::Pipeline pipeline;
  pipeline.name = "shop (C++)";

  pcr::docker::ComposeConfig compose;
  compose.files = {(here / "docker-compose.yml").string()};
  compose.project = "shopcpp";
  compose.state_dir = (here / ".pcr" / "projects").string();
  pcr::docker::install(pipeline, compose);  // env, placeholders, records, teardown

  auto image = pcr::run_step("image", pcr::command("./build-images.sh"));
  image.options.timeout = 10min;
  pipeline.steps.push_back(image);

  auto up = pcr::parallel_step(
      "up", 4,
      pcr::command("docker-compose up -d 2>&1 && {wait db}",
                   pcr::docker::placeholder_names()));
  up.options.timeout = 3min;
  pipeline.steps.push_back(up);

  std::vector<std::string> tests;
  for (const auto& entry : fs::directory_iterator(here / "tests"))
    if (entry.path().extension() == ".sh") tests.push_back("tests/" + entry.path().filename().string());
  std::sort(tests.begin(), tests.end());
  auto run = pcr::for_each_step("tests", tests, pcr::command("{exec app} sh /{items}", pcr::docker::placeholder_names()), 4);
  run.options.timeout = 2min;
  pipeline.steps.push_back(run);

  return pcr::run_main(argc, argv, pipeline);
}
