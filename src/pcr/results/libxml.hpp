#pragma once
// libxml2, opened when the first JUnit file is read rather than loaded with pcr: it brings
// ICU, zlib and liblzma, most of what a dynamic pcr spent loading before main, for a
// feature most runs never use. The functions the JUnit reader calls, found by name.

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlreader.h>

#include <string>

namespace pcr::results {

struct LibXml {
  decltype(&::xmlInitParser) init_parser = nullptr;
  decltype(&::xmlReaderForIO) reader_for_io = nullptr;
  decltype(&::xmlFreeTextReader) free_reader = nullptr;
  decltype(&::xmlTextReaderSetStructuredErrorHandler) set_reader_error_handler = nullptr;
  decltype(&::xmlTextReaderRead) read = nullptr;
  decltype(&::xmlTextReaderNodeType) node_type = nullptr;
  decltype(&::xmlTextReaderDepth) depth = nullptr;
  decltype(&::xmlTextReaderConstLocalName) local_name = nullptr;
  decltype(&::xmlTextReaderConstValue) value = nullptr;
  decltype(&::xmlTextReaderIsEmptyElement) is_empty_element = nullptr;
  decltype(&::xmlTextReaderGetAttribute) attribute = nullptr;
  decltype(&::xmlTextReaderGetParserLineNumber) line_number = nullptr;
  decltype(&::xmlSetGenericErrorFunc) set_generic_error = nullptr;
  decltype(&::xmlSetStructuredErrorFunc) set_structured_error = nullptr;
  // The calling thread's error handlers (the macros xmlGenericError and friends).
  decltype(&::__xmlGenericError) generic_error = nullptr;
  decltype(&::__xmlGenericErrorContext) generic_error_context = nullptr;
  decltype(&::__xmlStructuredError) structured_error = nullptr;
  decltype(&::__xmlStructuredErrorContext) structured_error_context = nullptr;
  xmlFreeFunc* free = nullptr;  // the variable xmlFree
};

// libxml2, opened and initialised once for the process; nullptr, with `error` set to why
// ("libxml2 (libxml2.so.2) cannot be opened: …"), when it is not installed.
const LibXml* libxml(std::string& error);

}  // namespace pcr::results
