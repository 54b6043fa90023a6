// fmt's compiled part, built once into pcr. Debian ships fmt as a shared library only, and
// pcr links its dependencies statically (CMakeLists.txt: start-up); fmt used header-only
// instead compiled its formatting core again into every file that formats (3.3 s more per
// file here). So every other file sees fmt's declarations, and this one its definitions,
// from fmt's own implementation header, with the instantiations its headers declare
// `extern` for the character type pcr formats.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {

template FMT_API auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;

}  // namespace detail
FMT_END_NAMESPACE
