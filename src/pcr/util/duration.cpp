#include <pcr/util/duration.hpp>

#include <fmt/format.h>

#include <cctype>
#include <cmath>

namespace pcr::util {

Expected<Millis> parse_duration(std::string_view text) {
  const auto bad = [&] {
    return Expected<Millis>::failure(
        fmt::format("bad duration '{}': write it like 90s, 10m, 1h30m or 500ms", text));
  };
  if (text.empty()) return bad();
  double total_ms = 0;
  size_t i = 0;
  bool any = false;
  double last_scale = 0;  // units go from the largest down, each once: "1h1h" is a typo
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (start == i) return bad();
    double value = 0;
    try {
      std::size_t used = 0;
      value = std::stod(std::string(text.substr(start, i - start)), &used);
      if (used != i - start) return bad();  // "1.5.5s"
    } catch (...) {
      return bad();
    }
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s" || (unit.empty() && !any && i == text.size())) scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else return bad();
    if (any && scale >= last_scale) return bad();
    last_scale = scale;
    total_ms += value * scale;
    any = true;
  }
  if (!std::isfinite(total_ms) || total_ms > 1e15) return bad();
  return Millis(static_cast<long long>(std::llround(total_ms)));
}

std::string format_duration(Millis d) {
  const long long ms = d.count();
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  const long long s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

std::string format_duration_spec(Millis d) {
  long long ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms >= 3'600'000) out += fmt::format("{}h", ms / 3'600'000), ms %= 3'600'000;
  if (ms >= 60'000) out += fmt::format("{}m", ms / 60'000), ms %= 60'000;
  if (ms >= 1000 && ms % 1000 == 0) out += fmt::format("{}s", ms / 1000), ms = 0;
  if (ms > 0) out += fmt::format("{}ms", ms);
  return out;
}

}  // namespace pcr::util
