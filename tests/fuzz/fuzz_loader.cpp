// libFuzzer target: bytes → the pipeline loader. A LoadError is the expected answer to bad
// input; anything else escaping, a crash, a sanitizer finding or a hang is a bug.
#include <pcr/config/loader.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto p = pcr::config::load_string(text, "/nonexistent/fuzz/ci.yaml");
    (void)p;
  } catch (const pcr::config::LoadError& e) {
    // Every diagnostic is printable as a user would see it.
    for (const auto& d : e.diagnostics()) (void)d.str();
  }
  return 0;
}
