#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pcr::util {

// Removes ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, and
// two-byte `ESC x`) from a byte stream that arrives in pieces. State carries across
// calls, so a sequence split between two chunks is still removed whole.
class AnsiStripper {
 public:
  AnsiStripper() = default;
  // The filter for a terminal: SGR colour sequences kept when `keep_sgr`, every other
  // escape sequence removed, and other control characters (but newline, tab and carriage
  // return) shown as `\xNN`, so nothing a job prints can move the cursor, clear the
  // screen, set the title or ring the bell.
  static AnsiStripper terminal_safe(bool keep_sgr) {
    AnsiStripper s;
    s.m_keep_sgr = keep_sgr;
    s.m_terminal_safe = true;
    return s;
  }
  // Append `in` without escape sequences to `out`.
  void feed(std::string_view in, std::string& out);
  // Not inside a sequence: plain text may bypass `feed`.
  bool idle() const { return m_state == State::text; }
  // Whether a colour (SGR) passed since the last `reset`: the writer then ends it.
  bool coloured() const { return m_coloured; }
  // Drop a sequence left unfinished (at the end of a job's output, or of a line).
  void reset() {
    m_state = State::text;
    m_sequence.clear();
    m_coloured = false;
  }

 private:
  enum class State { text, esc, csi, osc, osc_esc };
  State m_state = State::text;
  bool m_keep_sgr = false;
  bool m_terminal_safe = false;
  bool m_coloured = false;
  std::string m_sequence;  // the CSI sequence seen so far
};

// Whether `s` holds a control character other than newline, tab and carriage return (an
// escape sequence starts with one): when not, text may go to a terminal as it is. Many
// bytes at a time (AVX2 where the CPU has it, else SSE2): this runs over every byte of
// job output.
bool has_controls(std::string_view s);

// Return `s` without ANSI escape sequences.
std::string strip_ansi(std::string_view s);

// Levenshtein edit distance between `a` and `b`.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a likely typo; else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// Split `s` into lines on '\n'; a trailing newline does not make an empty last line.
std::vector<std::string> split_lines(std::string_view s);

// `words` joined with `separator` between them.
std::string join(const std::vector<std::string>& words, std::string_view separator);

// How many bytes at the start of `tail`, output whose beginning was cut off, are the cut
// piece to leave out: through its first newline when a whole line follows it, else its
// first eighth (at most 4 KiB). The piece may be the end of a secret, which no masker can
// recognise.
std::size_t cut_piece(std::string_view tail);

// `s` cut to at most `width` display columns (UTF-8 aware), ending in "…" when cut.
std::string elide(std::string_view s, size_t width);

// Number of display columns of UTF-8 text `s` (one per code point).
size_t display_width(std::string_view s);

}  // namespace pcr::util

namespace pcr::util {

// `s` safe to show on a terminal: control characters made visible (`\e`, `\0`, `\x07`,
// `\n` and `\t` too unless `keep_lines`), C1 controls as `\u0085`-style escapes, and bytes
// that are not UTF-8 as `\xNN`. Printable text, UTF-8 included, is left as it is.
std::string visible(std::string_view s, bool keep_lines = false);

}  // namespace pcr::util
