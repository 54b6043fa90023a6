#pragma once

// Helpers shared by the tests that run real processes.

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace pcr::test {

// Built with AddressSanitizer (scripts/test.sh --sanitize): its shadow memory and the
// quarantine of freed blocks make a process's RSS say nothing about pcr's own use, so
// memory bounds are checked in the plain build only.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool k_sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool k_sanitized = true;
#else
inline constexpr bool k_sanitized = false;
#endif
#else
inline constexpr bool k_sanitized = false;
#endif

// A fresh folder, removed when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "pcr-test-XXXXXX").string();
    m_path = ::mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  const std::string& path() const { return m_path; }
  std::string file(const std::string& name) const { return m_path + "/" + name; }
  void write(const std::string& name, const std::string& text) const { write_file(file(name), text); }
  static void write_file(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
  }

 private:
  std::string m_path;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A string unique to this test run, to find our processes by their command line.
inline std::string unique_marker(const std::string& prefix) {
  std::random_device rd;
  return prefix + std::to_string(::getpid()) + "x" + std::to_string(rd());
}

// Pids of live (non-zombie) processes whose command line contains `marker`.
inline std::vector<int> processes_with(const std::string& marker) {
  std::vector<int> found;
  DIR* dir = ::opendir("/proc");
  if (!dir) return found;
  while (dirent* e = ::readdir(dir)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = stat.rfind(')');
    bool zombie = paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
    if (!zombie && cmdline.find(marker) != std::string::npos) found.push_back(pid);
  }
  ::closedir(dir);
  return found;
}

// Wait until `condition` holds, checking every 10 ms, at most `limit`. Returns whether it
// held. This waits for an event we cannot subscribe to; it never stands in for one.
inline bool wait_until(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

inline bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// How many times `part` occurs in `text` (not overlapping).
inline std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

// Whether `tool` is on PATH (tests of optional tools skip, saying so, when it is not).
inline bool have(const std::string& tool) {
  return std::system(("command -v '" + tool + "' > /dev/null 2>&1").c_str()) == 0;
}

// Run `cmd` through the shell and return its stdout.
inline std::string sh(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

}  // namespace pcr::test
