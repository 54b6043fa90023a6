#include <pcr/results/libxml.hpp>

#include <fmt/format.h>

#include <dlfcn.h>

#include <mutex>

namespace pcr::results {

namespace {

constexpr const char* k_soname = "libxml2.so.2";

struct Loaded {
  LibXml api;
  std::string error;
};

template <typename T>
bool find(void* handle, const char* name, T& out, std::string& missing) {
  out = reinterpret_cast<T>(::dlsym(handle, name));
  if (out == nullptr && missing.empty()) missing = name;
  return out != nullptr;
}

Loaded open_libxml() {
  Loaded l;
  // Never closed: libxml2 keeps per-thread state for as long as the process runs.
  void* handle = ::dlopen(k_soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    l.error = fmt::format("libxml2 ({}) cannot be opened: {}", k_soname, why ? why : "unknown error");
    return l;
  }
  LibXml& x = l.api;
  std::string missing;
  find(handle, "xmlInitParser", x.init_parser, missing);
  find(handle, "xmlReaderForIO", x.reader_for_io, missing);
  find(handle, "xmlFreeTextReader", x.free_reader, missing);
  find(handle, "xmlTextReaderSetStructuredErrorHandler", x.set_reader_error_handler, missing);
  find(handle, "xmlTextReaderRead", x.read, missing);
  find(handle, "xmlTextReaderNodeType", x.node_type, missing);
  find(handle, "xmlTextReaderDepth", x.depth, missing);
  find(handle, "xmlTextReaderConstLocalName", x.local_name, missing);
  find(handle, "xmlTextReaderConstValue", x.value, missing);
  find(handle, "xmlTextReaderIsEmptyElement", x.is_empty_element, missing);
  find(handle, "xmlTextReaderGetAttribute", x.attribute, missing);
  find(handle, "xmlTextReaderGetParserLineNumber", x.line_number, missing);
  find(handle, "xmlSetGenericErrorFunc", x.set_generic_error, missing);
  find(handle, "xmlSetStructuredErrorFunc", x.set_structured_error, missing);
  find(handle, "__xmlGenericError", x.generic_error, missing);
  find(handle, "__xmlGenericErrorContext", x.generic_error_context, missing);
  find(handle, "__xmlStructuredError", x.structured_error, missing);
  find(handle, "__xmlStructuredErrorContext", x.structured_error_context, missing);
  find(handle, "xmlFree", x.free, missing);
  if (!missing.empty()) {
    l.error = fmt::format("libxml2 ({}) lacks {}", k_soname, missing);
    return l;
  }
  x.init_parser();
  return l;
}

}  // namespace

const LibXml* libxml(std::string& error) {
  static std::once_flag once;
  static Loaded loaded;
  std::call_once(once, [] { loaded = open_libxml(); });
  if (!loaded.error.empty()) {
    error = loaded.error;
    return nullptr;
  }
  return &loaded.api;
}

}  // namespace pcr::results
