#pragma once

#include <pcr/pipeline/model.hpp>

#include <string>
#include <vector>

namespace pcr::pipeline {

// Shorthands for building steps in C++. Each returns a Step to adjust further (its
// `options`, `workers`, …) and push onto `Pipeline::steps` or `cleanup`.

// A command from text with placeholders ({n}, {items}, …), checked now: throws
// std::invalid_argument naming the bad placeholder.
Command command(const std::string& text);
// The same, accepting placeholders an extension provides (e.g. docker::placeholder_names()).
Command command(const std::string& text, const std::vector<std::string>& extra);

// One job.
Step run_step(std::string name, Command cmd);
// `n` jobs of `cmd`; job i runs as number i.
Step parallel_step(std::string name, unsigned n, Command cmd);
// One job per command, side by side.
Step commands_step(std::string name, std::vector<Command> cmds);
// One job per item (or per `batch` items) on a pool of `workers` (0: CPUs).
Step for_each_step(std::string name, std::vector<std::string> items, Command cmd, unsigned workers = 0,
                   unsigned batch = 1);

}  // namespace pcr::pipeline
