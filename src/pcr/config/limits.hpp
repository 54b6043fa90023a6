#pragma once

#include <pcr/pipeline/model.hpp>

#include <cstddef>

// What a pipeline file may hold. Each limit is far above any real pipeline and low enough
// that a hostile or broken file costs bounded time and memory; going past one is a load
// error at the value's file:line:column (docs/pipeline.md, "Limits").
namespace pcr::config::limits {

inline constexpr std::size_t file_bytes = 8u << 20;     // the pipeline file: 8 MiB
inline constexpr std::size_t scalar_bytes = 1u << 20;   // one value (a command, a name): 1 MiB
inline constexpr std::size_t env_variable_bytes = pipeline::max_env_variable_bytes;
inline constexpr std::size_t env_block_bytes = 128u << 10;     // one `env:` in all (ARG_MAX: 2 MiB shared)
// What the document amounts to once YAML aliases (*name) are expanded: every alias counts
// as a copy of what it names, as the loader reads it.
inline constexpr std::size_t expanded_nodes = 1'000'000;
inline constexpr std::size_t expanded_bytes = 32u << 20;  // of text: 32 MiB
// An `expect` pattern. RE2 matches in time linear in the output, but its fast automaton
// needs memory that grows with the pattern; past this a pattern could fall back to
// pattern-times-output work.
inline constexpr std::size_t expect_bytes = 10u << 10;  // 10 KiB
inline constexpr long long parallel = 10'000;  // jobs of one `parallel:` step
inline constexpr long long groups = 10'000;
inline constexpr long long workers = 1'000;    // of one step, and of one host
inline constexpr long long batch = 100'000;
inline constexpr long long retries = 100;
inline constexpr std::size_t items = pipeline::max_items;  // of one for_each step

}  // namespace pcr::config::limits
