#pragma once
// Whether the CPU has AVX2, for the vectorised scans of util/. glibc's answer comes from
// what its loader found before main; GCC's __builtin_cpu_supports would link libgcc's own
// probe, a constructor of a dozen `cpuid`s on every start (each a trap to the hypervisor in
// a virtual machine, about 0.15 ms in all here).

#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<sys/platform/x86.h>)
#if defined(__clang__)
// glibc's header declares its two helpers with C's _Bool, which g++ takes in C++ and
// clang does not.
#define _Bool bool
#include <sys/platform/x86.h>
#undef _Bool
#else
#include <sys/platform/x86.h>
#endif
#define PCR_GLIBC_CPU_FEATURES 1
#endif
#endif

namespace pcr::util {

#if defined(__x86_64__)
inline bool has_avx2() {
#if defined(PCR_GLIBC_CPU_FEATURES)
  return CPU_FEATURE_ACTIVE(AVX2);
#else
  return __builtin_cpu_supports("avx2");
#endif
}
#endif

}  // namespace pcr::util
