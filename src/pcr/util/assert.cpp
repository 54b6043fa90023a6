#include <pcr/util/assert.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace pcr::util {

void assertion_failed(const char* condition, const char* file, int line) {
  // stdio, not iostreams: this may run while anything else is broken.
  std::fprintf(stderr, "pcr: internal error: %s:%d: assertion failed: %s\n", file, line,
               condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace pcr::util
