#pragma once

#include <pcr/util/expected.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace pcr::util {

using Millis = std::chrono::milliseconds;

// Parse a duration as users write it: `90s`, `10m`, `1h30m`, `500ms`, `1.5s`, or a bare
// number of seconds (`3`). Units may repeat in any order of magnitude; the result is
// rounded to whole milliseconds. Zero is allowed; negative or empty input is not.
Expected<Millis> parse_duration(std::string_view text);

// Format `d` for people: `120ms`, `2.0s`, `59.9s`, `1m30s`, `1h02m`.
std::string format_duration(Millis d);

// Format `d` compactly and exactly as a pipeline file would write it: `3s`, `1m30s`, `250ms`.
std::string format_duration_spec(Millis d);

}  // namespace pcr::util
