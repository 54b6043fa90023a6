#include <pcr/results/junit.hpp>
#include <pcr/results/libxml.hpp>
#include <pcr/results/text.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>

namespace pcr::results {
namespace {

constexpr std::size_t k_max_unreadable = 3;  // files named in `unreadable`; more are "…"

// The bytes of one open file for libxml2, no more than limits::junit_file of them: a file
// that grows past the limit after it was measured is still refused.
struct Input {
  int fd = -1;
  std::size_t left = limits::junit_file;
  bool too_large = false;
  bool failed = false;
  int error = 0;
};

int read_input(void* context, char* buffer, int len) {
  auto* in = static_cast<Input*>(context);
  if (len <= 0) return 0;
  // One byte more than is left tells a file at the limit from one past it.
  const size_t want = std::min(static_cast<size_t>(len), in->left + 1);
  ssize_t n;
  do {
    n = ::read(in->fd, buffer, want);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    in->failed = true;
    in->error = errno;
    return -1;
  }
  if (static_cast<size_t>(n) > in->left) {
    in->too_large = true;
    return -1;
  }
  in->left -= static_cast<size_t>(n);
  return static_cast<int>(n);
}

int close_input(void*) { return 0; }  // the descriptor is the caller's

class Fd {
 public:
  explicit Fd(int fd) : m_fd(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (m_fd >= 0) ::close(m_fd);
  }
  int get() const { return m_fd; }

 private:
  int m_fd;
};

// The first error libxml2 reports for a file (later ones tend to follow from it).
struct ErrorSink {
  bool set = false;
  int line = 0;
  std::string message;
};

// Works with both `xmlErrorPtr` (libxml2 < 2.12) and `const xmlError*`.
template <typename ErrorPointer>
void on_error(void* context, ErrorPointer error) {
  auto* sink = static_cast<ErrorSink*>(context);
  if (sink->set || error == nullptr || error->level < XML_ERR_ERROR) return;  // not warnings
  sink->set = true;
  sink->line = error->line;
  // In an entity's text libxml2 counts lines from the entity's start: the file's line is
  // that of the first input.
  if ((error->domain == XML_FROM_PARSER || error->domain == XML_FROM_NAMESPACE) &&
      error->ctxt != nullptr) {
    const auto* parser = static_cast<const xmlParserCtxt*>(error->ctxt);
    if (parser->inputNr > 1 && parser->inputTab[0] != nullptr)
      sink->line = parser->inputTab[0]->line;
  }
  std::string_view text = error->message != nullptr ? error->message : "XML error";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  // One line: libxml2 puts some details ("Bytes: 0xFF ...") on a line of their own.
  std::string message = detail::capped(text, limits::message);
  std::replace(message.begin(), message.end(), '\n', ' ');
  sink->message = std::move(message);
}

void ignore_generic(void*, const char*, ...) {}

// libxml2 reports some errors (I/O, encodings) to its per-thread handlers rather than the
// reader's: while a file is read they go to the sink too, and never to stderr.
class ErrorRoute {
 public:
  ErrorRoute(const LibXml& x, ErrorSink* sink)
      : m_x(x),
        m_generic(*x.generic_error()),
        m_generic_context(*x.generic_error_context()),
        m_structured(*x.structured_error()),
        m_structured_context(*x.structured_error_context()) {
    x.set_generic_error(nullptr, ignore_generic);
    x.set_structured_error(sink, on_error);
  }
  ErrorRoute(const ErrorRoute&) = delete;
  ErrorRoute& operator=(const ErrorRoute&) = delete;
  ~ErrorRoute() {
    m_x.set_generic_error(m_generic_context, m_generic);
    m_x.set_structured_error(m_structured_context, m_structured);
  }

 private:
  const LibXml& m_x;
  xmlGenericErrorFunc m_generic;
  void* m_generic_context;
  xmlStructuredErrorFunc m_structured;
  void* m_structured_context;
};

std::string_view view(const xmlChar* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

std::string attribute(const LibXml& x, xmlTextReaderPtr reader, const char* name, std::size_t cap) {
  xmlChar* value = x.attribute(reader, reinterpret_cast<const xmlChar*>(name));
  if (value == nullptr) return {};
  std::string out = detail::capped(view(value), cap);
  (*x.free)(value);
  return out;
}

// `time="1.25"`: seconds, as decimal. Anything else (negative, not a number, absurd) is
// no time rather than an error: the tests still count.
std::optional<std::chrono::milliseconds> seconds(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty() || text.front() == '-' || text.front() == '+') return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value < 0 ||
      value > 1e9)
    return std::nullopt;
  return std::chrono::milliseconds(std::llround(value * 1000));
}

enum class Kind { suite, testcase, failure, skipped, other };

struct Frame {
  Kind kind = Kind::other;
  bool capture = false;  // text here is the current test's details
  std::string name;      // a suite's
};

// Reads the tests of one file into `tests`. Returns why it could not, or "" when it could.
// `budget` is what is left of limits::tests for the job; `details` spans the job.
std::string read_file(const LibXml& x, const std::string& path, std::vector<Test>& tests, std::size_t budget,
                      detail::DetailsWriter& details, bool& too_many) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO: no hang
  if (fd < 0) return fmt::format("cannot open: {}", std::strerror(errno));
  const Fd file(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fmt::format("cannot read: {}", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (static_cast<unsigned long long>(st.st_size) > limits::junit_file)
    return fmt::format("larger than {} MiB", limits::junit_file >> 20);

  Input input;
  input.fd = fd;
  ErrorSink sink;
  const ErrorRoute route(x, &sink);
  // No XML_PARSE_NOENT (entities stay references), no DTDLOAD/DTDATTR (nothing fetched or
  // defaulted), NONET, and no HUGE: libxml2's own size and amplification limits hold.
  const int options = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_COMPACT;
  xmlTextReaderPtr reader =
      x.reader_for_io(read_input, close_input, &input, path.c_str(), nullptr, options);
  if (reader == nullptr) return "cannot read: libxml2 failed to start";
  x.set_reader_error_handler(reader, on_error, &sink);

  std::vector<Frame> stack;
  std::string problem;
  Test current;
  unsigned position = 0;
  const auto finish_test = [&] {
    if (tests.size() >= budget) {
      too_many = true;
      problem = fmt::format("more than {} tests", limits::tests);
      return;
    }
    tests.push_back(std::move(current));
    current = Test{};
  };

  int rc = 0;
  while (problem.empty() && (rc = x.read(reader)) == 1) {
    const int type = x.node_type(reader);
    if (type == XML_READER_TYPE_ELEMENT) {
      if (x.depth(reader) >= limits::xml_depth) {
        problem = fmt::format("elements nested deeper than {}", limits::xml_depth);
        break;
      }
      const std::string_view name = view(x.local_name(reader));
      const Kind parent = stack.empty() ? Kind::other : stack.back().kind;
      Frame frame;
      if (stack.empty() && name != "testsuites" && name != "testsuite") {
        problem = fmt::format("not JUnit XML: the root element is <{}>",
                              detail::capped(name, limits::message));
        break;
      }
      if (name == "testsuite" && (stack.empty() || parent == Kind::suite)) {
        frame.kind = Kind::suite;
        frame.name = attribute(x, reader, "name", limits::name);
      } else if (name == "testsuites" && stack.empty()) {
        frame.kind = Kind::suite;  // its name, if any, is not a suite's
      } else if (name == "testcase" && parent == Kind::suite) {
        frame.kind = Kind::testcase;
        current = Test{};
        current.name = attribute(x, reader, "name", limits::name);
        current.classname = attribute(x, reader, "classname", limits::name);
        current.suite = current.classname;
        for (auto it = stack.rbegin(); current.suite.empty() && it != stack.rend(); ++it)
          current.suite = it->name;
        current.time = seconds(attribute(x, reader, "time", 64));
        current.number = ++position;
        details.next_test();
      } else if ((name == "failure" || name == "error") && parent == Kind::testcase) {
        frame.kind = Kind::failure;
        if (current.outcome == Outcome::failed) details.add(current.details, "\n");
        if (current.outcome != Outcome::failed || current.reason.empty())
          current.reason = attribute(x, reader, "message", limits::message);
        current.outcome = Outcome::failed;
      } else if (name == "skipped" && parent == Kind::testcase) {
        frame.kind = Kind::skipped;
        if (current.outcome != Outcome::failed) {
          current.outcome = Outcome::skipped;
          current.reason = attribute(x, reader, "message", limits::message);
        }
      }
      frame.capture = frame.kind == Kind::failure || frame.kind == Kind::skipped ||
                      (!stack.empty() && stack.back().capture);
      if (x.is_empty_element(reader)) {
        if (frame.kind == Kind::testcase) finish_test();
      } else {
        stack.push_back(std::move(frame));
      }
    } else if (type == XML_READER_TYPE_END_ELEMENT) {
      if (stack.empty()) break;  // libxml2 reports the error
      if (stack.back().kind == Kind::testcase) finish_test();
      stack.pop_back();
    } else if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
               type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) {
      if (!stack.empty() && stack.back().capture)
        details.add(current.details, view(x.value(reader)));
    }
    // Entity references stay unexpanded; comments, processing instructions and the
    // doctype are not results.
  }
  // Errors libxml2 raises outside the parser (encoding conversion) carry no line.
  if (sink.set && sink.line <= 0) sink.line = x.line_number(reader);
  x.free_reader(reader);

  if (!problem.empty()) return problem;
  if (input.too_large) return fmt::format("larger than {} MiB", limits::junit_file >> 20);
  if (input.failed) return fmt::format("cannot read: {}", std::strerror(input.error));
  if (sink.set && sink.line > 0) return fmt::format("line {}: {}", sink.line, sink.message);
  if (sink.set) return sink.message;
  if (rc != 0) return "XML error";
  return "";
}

}  // namespace

Results read_junit(const std::vector<std::string>& paths) {
  Results results;
  if (paths.empty()) {
    results.unreadable = "no JUnit XML file";
    return results;
  }
  std::string error;
  const LibXml* x = libxml(error);
  if (x == nullptr) {
    results.unreadable = error;
    return results;
  }
  detail::DetailsWriter details;
  std::vector<std::string> unreadable;
  bool more_unreadable = false;
  for (const auto& path : paths) {
    std::vector<Test> tests;
    bool too_many = false;
    std::string why =
        read_file(*x, path, tests, limits::tests - results.tests.size(), details, too_many);
    if (too_many) {
      // Past the job's limit nothing is kept: the counts would be wrong.
      results = Results{};
      results.unreadable = fmt::format("more than {} tests", limits::tests);
      return results;
    }
    if (!why.empty()) {
      if (unreadable.size() == k_max_unreadable)
        more_unreadable = true;
      else
        unreadable.push_back(fmt::format("{}: {}", detail::capped(path, limits::name), why));
      continue;
    }
    std::move(tests.begin(), tests.end(), std::back_inserter(results.tests));
  }
  if (more_unreadable) unreadable.push_back("…");
  for (const auto& u : unreadable)
    results.unreadable += (results.unreadable.empty() ? "" : "; ") + u;
  return results;
}

}  // namespace pcr::results
