// A C++ pipeline program that goes on after pcr::run_main, as a program may: it says so
// on stdout and in a file, each line with its process id. With PCR_TEST_HOLD set, its job
// holds (a file says it started) and a cleanup step leaves a file: for a kill mid-run.
#include <pcr/pcr.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  pcr::Pipeline pipeline;
  pipeline.name = "after run_main";
  if (std::getenv("PCR_TEST_HOLD")) {
    pipeline.steps.push_back(pcr::run_step("one", pcr::command("echo started; touch started; sleep 300")));
    pipeline.cleanup.push_back(pcr::run_step("clean", pcr::command("touch cleaned")));
  } else {
    pipeline.steps.push_back(pcr::run_step("one", pcr::command("echo the job ran")));
  }
  const int code = pcr::run_main(argc, argv, pipeline);
  std::printf("after run_main: %d (pid %d)\n", code, static_cast<int>(::getpid()));
  if (FILE* f = std::fopen("after.log", "a")) {
    std::fprintf(f, "after run_main: %d (pid %d)\n", code, static_cast<int>(::getpid()));
    std::fclose(f);
  }
  return code;
}
