#pragma once

#include <pcr/pipeline/model.hpp>

namespace pcr::cli {

// The `pcr` command line: run, check, --version, --help. Returns the exit code.
int main(int argc, char** argv);

// The entry point of a pipeline written in C++: runs `pipeline` with the same options as
// `pcr run` (-j, --step, --dry-run, --output, --no-color), given without a FILE.
int run_main(int argc, char** argv, const pipeline::Pipeline& pipeline);

}  // namespace pcr::cli
