#pragma once

#include <pcr/results/results.hpp>

#include <cstddef>
#include <string>
#include <string_view>

// Bounded text for the parsers (not part of the results API).
namespace pcr::results::detail {

// `text` cut to `cap` bytes (before a UTF-8 sequence rather than inside one), with "…"
// when it was longer.
std::string capped(std::string_view text, std::size_t cap = limits::name);

// Appends lines to the details of one test at a time, within limits::details for the test
// and limits::all_details for the job: past either, "… (cut)" and nothing more.
class DetailsWriter {
 public:
  void next_test() { m_cut = false; }
  // `line` after a newline (none when `details` is empty).
  void add_line(std::string& details, std::string_view line);
  // `text` as it is.
  void add(std::string& details, std::string_view text);

 private:
  bool m_cut = false;
  std::size_t m_left = limits::all_details;
};

}  // namespace pcr::results::detail
