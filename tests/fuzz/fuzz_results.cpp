// libFuzzer target: the test-result readers. The input is a job's stdout for the TAP
// parser, fed whole and in pieces the input's own bytes choose: both must give the same
// Results. The same bytes, written to a file, go through the JUnit reader, which must
// neither crash nor break its limits.
#include <pcr/results/junit.hpp>
#include <pcr/results/results.hpp>
#include <pcr/results/tap.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

namespace {

// Like PCR_ASSERT, without linking pcr: say what and abort, so libFuzzer keeps the input.
#define CHECK(condition) ((condition) ? static_cast<void>(0) : fail(#condition, __LINE__))

[[noreturn]] void fail(const char* what, int line) {
  std::fprintf(stderr, "fuzz_results.cpp:%d: check failed: %s\n", line, what);
  std::abort();
}

void check_limits(const pcr::results::Results& r) {
  namespace limits = pcr::results::limits;
  CHECK(r.tests.size() <= limits::tests);
  for (const auto& t : r.tests) {
    CHECK(t.name.size() <= limits::name + 3);  // + "…"
    CHECK(t.suite.size() <= limits::name + 3);
    CHECK(t.reason.size() <= limits::message + 3);
    CHECK(t.details.size() <= limits::details + 16);  // + "… (cut)"
  }
}

// A fixed file per fuzzing process, removed after each input (libFuzzer may end the process
// without running atexit handlers).
const std::string& junit_path() {
  static const std::string path = "/tmp/pcr-fuzz-results-" + std::to_string(::getpid()) + ".xml";
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  pcr::results::TapParser whole;
  whole.feed(text);
  const pcr::results::Results expected = whole.finish();
  check_limits(expected);
  CHECK(expected.unreadable.empty() || expected.tests.empty());

  // Cut after every byte whose value, mixed with its position, has its low 3 bits 0: the
  // cuts move whenever the input does, including inside lines and UTF-8 sequences.
  pcr::results::TapParser pieces;
  size_t from = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (((static_cast<unsigned char>(text[i]) ^ (i * 0x9E)) & 7) == 0) {
      pieces.feed(text.substr(from, i + 1 - from));
      from = i + 1;
    }
  }
  pieces.feed(text.substr(from));
  const pcr::results::Results got = pieces.finish();
  if (!(got == expected)) {
    std::fprintf(stderr, "whole: %zu tests, problem '%s', unreadable '%s'\n", expected.tests.size(),
                 expected.problem.c_str(), expected.unreadable.c_str());
    std::fprintf(stderr, "cut:   %zu tests, problem '%s', unreadable '%s'\n", got.tests.size(),
                 got.problem.c_str(), got.unreadable.c_str());
    fail("feeding in pieces gives what feeding whole gives", __LINE__);
  }

  // Byte by byte too, for inputs small enough to keep the fuzzer fast.
  if (size <= 4096) {
    pcr::results::TapParser bytes;
    for (char c : text) bytes.feed(std::string_view(&c, 1));
    CHECK(bytes.finish() == expected);
  }

  const std::string& path = junit_path();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    CHECK(out.good());
  }
  const pcr::results::Results junit = pcr::results::read_junit({path});
  std::remove(path.c_str());
  check_limits(junit);
  for (const auto& t : junit.tests) CHECK(t.number >= 1);
  return 0;
}
