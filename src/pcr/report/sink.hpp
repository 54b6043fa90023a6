#pragma once

#include <pcr/util/mask.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pcr::report {

// Where every byte pcr writes for a person or a tool goes: the console, run.log, each
// job's log, the JSON, JUnit and HTML reports. One type, so that no output can skip
// what it guarantees:
//
// - Secrets are masked, as a stream: a value split across two writes is still caught
//   (the last bytes that could start one are held until the next write, `release` or
//   `finish`).
// - The caller never waits for a slow reader. Into a pipe or a terminal, writes are
//   queued and a thread of the sink's own writes them out; the queue lives in memory up
//   to 1 MiB and past that in an unlinked temporary file, so pcr's memory stays bounded
//   however far behind the reader is, and nothing is dropped or reordered. A regular file
//   is written directly (a disk does not stall like a reader can).
// - A failure is kept, not ignored: a reader that went away (EPIPE: `pcr run | head`)
//   just ends the writing; any other (ENOSPC, EIO, EFBIG, ...) is kept, the rest of the
//   output dropped, and `error()` names the sink and the reason for the caller to report.
class Sink {
 public:
  // `fd` is written as `name` (shown in errors); closed at `finish` when `own`.
  Sink(int fd, std::string name, std::vector<std::string> secrets, bool own);
  // Open `path` (0600, truncated); on failure the sink has `error()` set and writes nothing.
  static std::unique_ptr<Sink> open(const std::string& path, std::vector<std::string> secrets);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  void write(std::string_view data);
  // Let bytes held back for a possible split secret go: at the end of a job's output.
  void release();
  // Wait until what is queued is written, for at most `limit` (before pcr stops itself
  // for job control: what it said must show before the shell's prompt).
  void drain(std::chrono::milliseconds limit);
  // Write out everything queued (waiting for the reader if it must), then close an owned
  // descriptor. Idempotent.
  void finish();

  // Into a pipe, find the room by asking how much is unread (FIONREAD), as on kernels
  // whose pipes do not take RWF_NOWAIT writes; tests use it to try that path here too.
  void measure_room() { m_nowait = false; }

  std::string error() const;  // "" or "NAME: reason"
  bool reader_gone() const;   // EPIPE: not an error
  const std::string& name() const { return m_name; }

 private:
  void put(std::string_view masked);
  // Write the start of `data` that a pipe takes now without blocking (nothing queued);
  // returns how many bytes are done with.
  std::size_t write_what_fits(std::string_view data);
  void write_now(std::string_view data);  // in the caller's thread (regular files)
  void run();                              // the writer thread
  void failed(int err);

  int m_fd;
  std::string m_name;
  util::Masker m_mask;
  bool m_own;
  bool m_async = false;
  std::size_t m_pipe_size = 0;  // a pipe's capacity; 0: not a pipe
  bool m_nowait = true;         // the kernel takes RWF_NOWAIT writes to a pipe
  bool m_finished = false;

  mutable std::mutex m_mutex;
  std::condition_variable m_wake, m_drained;
  std::deque<std::string> m_memory;  // queued in memory, oldest first
  std::size_t m_memory_bytes = 0;
  int m_spill = -1;                  // the overflow file, once needed
  std::uint64_t m_spill_read = 0, m_spill_end = 0;
  bool m_spilling = false;           // new data goes to the spill until it is drained
  bool m_busy = false;               // the thread holds data it is writing
  bool m_stop = false;
  int m_errno = 0;
  bool m_epipe = false;
  std::thread m_thread;
};

}  // namespace pcr::report
