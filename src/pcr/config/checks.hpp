#pragma once

// The loader's checks that need no YAML (checks.cpp): a text scan for a second document,
// the shapes of names and values. Not part of the library's API.

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>

namespace pcr::config::detail {

// The line (1-based) where a second YAML document starts to hold something, or 0.
int second_document_line(std::string_view text);
// An environment variable's name: letters, digits, `_`, not starting with a digit.
bool valid_var(const std::string& v);
// A host's name in `hosts:`.
bool valid_host_name(const std::string& v);
// A DOCKER_HOST value: unix://, tcp://, ssh://, fd:// or npipe://, on one line.
bool docker_host_value(const std::string& v);
// Whether `run` uses {project}, {compose}, {exec ...} or {wait ...} (not the escaped `{{`).
bool uses_worker_placeholder(const std::string& run);
// Where and why `root` is too big once its aliases are expanded (limits.hpp), or nullopt.
std::optional<std::pair<YAML::Node, std::string>> over_budget(const YAML::Node& root);

}  // namespace pcr::config::detail
