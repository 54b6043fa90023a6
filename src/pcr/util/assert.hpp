#pragma once

// PCR_ASSERT(condition): an invariant of pcr's own code, checked in every build. When it
// does not hold, pcr says where (file:line and the condition) on stderr and aborts: a bug
// is never carried on silently. User mistakes and machine failures are not invariants:
// they come back as values or a load error.
#define PCR_ASSERT(condition)                                                \
  ((condition) ? static_cast<void>(0)                                        \
               : ::pcr::util::assertion_failed(#condition, __FILE__, __LINE__))

namespace pcr::util {

[[noreturn]] void assertion_failed(const char* condition, const char* file, int line);

}  // namespace pcr::util
