// A C++ pipeline program that goes on after pcr::run_main, as a program may: it says so
// on stdout and in a file, each line with its process id.
#include <pcr/pcr.hpp>

#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  pcr::Pipeline pipeline;
  pipeline.name = "after run_main";
  pipeline.steps.push_back(pcr::run_step("one", pcr::command("echo the job ran")));
  const int code = pcr::run_main(argc, argv, pipeline);
  std::printf("after run_main: %d (pid %d)\n", code, static_cast<int>(::getpid()));
  if (FILE* f = std::fopen("after.log", "a")) {
    std::fprintf(f, "after run_main: %d (pid %d)\n", code, static_cast<int>(::getpid()));
    std::fclose(f);
  }
  return code;
}
