#include <pcr/report/sink.hpp>
#include <pcr/util/io.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pcr::report {

namespace {
constexpr std::size_t k_memory_limit = 1u << 20;  // queued in memory before spilling
constexpr std::size_t k_chunk = 256u << 10;       // read back from the spill at a time
constexpr std::size_t k_direct_min = 64u << 10;    // a smaller room is left to the thread

std::string spill_dir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}
}  // namespace

Sink::Sink(int fd, std::string name, std::vector<std::string> secrets, bool own)
    : m_fd(fd), m_name(std::move(name)), m_mask(std::move(secrets)), m_own(own) {
  struct stat st {};
  // A reader can stall a pipe, a socket or a terminal; files and devices like /dev/null
  // take what they get at once.
  m_async = fd >= 0 && ::fstat(fd, &st) == 0 &&
            (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || (S_ISCHR(st.st_mode) && ::isatty(fd)));
  if (fd >= 0 && S_ISFIFO(st.st_mode)) {
    // A bigger pipe lets the reader take more per wake-up; past the system's limit
    // (pipe-max-size) the pipe simply keeps its size.
    const int size = ::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(k_memory_limit));
    m_pipe_size = static_cast<std::size_t>(size > 0 ? size : ::fcntl(fd, F_GETPIPE_SZ));
  }
  if (m_async) m_thread = std::thread([this] { run(); });
}

std::unique_ptr<Sink> Sink::open(const std::string& path, std::vector<std::string> secrets) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int err = errno;
  auto sink = std::make_unique<Sink>(fd, path, std::move(secrets), true);
  if (fd < 0) sink->failed(err);
  return sink;
}

Sink::~Sink() { finish(); }

void Sink::failed(int err) {
  if (err == EPIPE) {
    m_epipe = true;
  } else if (m_errno == 0) {
    m_errno = err;
  }
}

std::string Sink::error() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_errno ? fmt::format("{}: {}", m_name, std::strerror(m_errno)) : "";
}

bool Sink::reader_gone() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_epipe;
}

void Sink::write(std::string_view data) {
  if (data.empty() || m_finished) return;
  if (m_mask.active())
    put(m_mask.feed(data));
  else
    put(data);
}

void Sink::release() {
  if (m_mask.active() && !m_finished) put(m_mask.flush());
}

void Sink::write_now(std::string_view data) {
  if (m_errno || m_epipe || m_fd < 0) return;
  if (!util::write_all(m_fd, data)) failed(errno);
}

void Sink::put(std::string_view data) {
  if (data.empty()) return;
  if (!m_async) {
    write_now(data);
    return;
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_errno || m_epipe) return;  // nothing more reaches a failed sink
  // The reader keeps up: write here, without the hand-off to the thread, as much as the
  // pipe takes now. Only the rest (of a big piece, when the reader lags a little) is queued.
  data.remove_prefix(write_what_fits(data));
  if (data.empty() || m_errno || m_epipe) return;
  if (!m_spilling && m_memory_bytes + data.size() <= k_memory_limit) {
    m_memory.emplace_back(data);
    m_memory_bytes += data.size();
  } else {
    // Behind by more than the memory limit: the backlog goes to disk, in order.
    if (m_spill < 0) {
      m_spill = ::open(spill_dir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
      if (m_spill < 0) {
        m_errno = errno;
        m_name += fmt::format(" (its backlog, in {})", spill_dir());
        return;
      }
    }
    const ssize_t n = ::pwrite(m_spill, data.data(), data.size(), static_cast<off_t>(m_spill_end));
    if (n != static_cast<ssize_t>(data.size())) {
      // A short write is a full disk; errno then still holds whatever failed before (an
      // EAGAIN of RWF_NOWAIT above), which would name the wrong cause.
      m_errno = n < 0 ? errno : ENOSPC;
      m_name += fmt::format(" (its backlog, in {})", spill_dir());
      return;
    }
    m_spill_end += data.size();
    m_spilling = true;
  }
  m_wake.notify_one();
}

std::size_t Sink::write_what_fits(std::string_view data) {
  if (m_pipe_size == 0 || m_busy || !m_memory.empty() || m_spilling) return 0;
  std::size_t done = 0;
  // A write that never waits, without making the pipe non-blocking for the processes
  // that share it (pcr's parent, a CI agent): RWF_NOWAIT takes what fits and says EAGAIN.
  while (m_nowait && done < data.size()) {
    iovec piece{const_cast<char*>(data.data() + done), data.size() - done};
    const ssize_t n = ::pwritev2(m_fd, &piece, 1, -1, RWF_NOWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
      m_nowait = false;  // an older kernel: measure the room instead (below)
    } else {
      if (n < 0 && errno != EAGAIN) failed(errno);
      return done;
    }
  }
  if (m_nowait) return done;
  int unread = 0;
  if (::ioctl(m_fd, FIONREAD, &unread) != 0 || unread < 0) return 0;
  // A pipe holds pages, not bytes: the unread bytes may start and end mid-page, and a
  // write fills whole pages after topping up the last one. Three pages of margin cover
  // both ends and the rounding, so a write of `room` never waits for the reader.
  static const std::size_t margin = 3 * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t used = static_cast<std::size_t>(unread) + margin;
  const std::size_t room = used < m_pipe_size ? m_pipe_size - used : 0;
  if (room < std::min(data.size(), k_direct_min)) return 0;  // a small room is left to the thread
  const std::size_t n = std::min(room, data.size());
  write_now(data.substr(0, n));
  return m_errno || m_epipe ? data.size() : n;
}

void Sink::run() {
  std::unique_lock<std::mutex> lock(m_mutex);
  std::string chunk;
  for (;;) {
    m_wake.wait(lock, [this] {
      return m_stop || !m_memory.empty() || m_spill_read < m_spill_end;
    });
    if (m_errno || m_epipe) {  // failed: drop what is queued
      m_memory.clear();
      m_memory_bytes = 0;
      m_spill_read = m_spill_end;
    }
    if (!m_memory.empty()) {
      // Memory first: it is older than anything spilled.
      chunk = std::move(m_memory.front());
      m_memory.pop_front();
      m_memory_bytes -= chunk.size();
    } else if (m_spill_read < m_spill_end) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk, m_spill_end - m_spill_read));
      chunk.resize(n);
      const off_t at = static_cast<off_t>(m_spill_read);
      lock.unlock();
      // [read, end) is never written again: safe to read without the lock.
      const ssize_t got = ::pread(m_spill, chunk.data(), n, at);
      lock.lock();
      if (got <= 0) {
        m_errno = got < 0 ? errno : EIO;
        continue;
      }
      chunk.resize(static_cast<std::size_t>(got));
      m_spill_read += static_cast<std::uint64_t>(got);
      if (m_spill_read == m_spill_end) {  // caught up: back to memory, the file emptied
        m_spilling = false;
        m_spill_read = m_spill_end = 0;
        if (::ftruncate(m_spill, 0) != 0) {
          // The space stays taken until the file is closed; writing goes on.
        }
      }
    } else if (m_stop) {
      break;
    } else {
      continue;
    }
    m_busy = true;
    lock.unlock();
    const bool ok = util::write_all(m_fd, chunk);  // blocks for a slow reader, here only
    const int err = errno;
    lock.lock();
    m_busy = false;
    if (!ok) failed(err);
    m_drained.notify_all();
  }
  m_drained.notify_all();
}

void Sink::drain(std::chrono::milliseconds limit) {
  if (!m_async) return;
  std::unique_lock<std::mutex> lock(m_mutex);
  m_drained.wait_for(lock, limit, [this] {
    return m_errno || m_epipe || (m_memory.empty() && m_spill_read == m_spill_end && !m_busy);
  });
}

void Sink::finish() {
  if (m_finished) return;
  release();
  m_finished = true;
  if (m_async) {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_stop = true;
    }
    m_wake.notify_one();
    m_thread.join();
  }
  if (m_spill >= 0) ::close(m_spill);
  if (m_own && m_fd >= 0) {
    // A full disk may only show at close (NFS, some quotas).
    if (::close(m_fd) != 0 && errno != EINTR) failed(errno);
  }
}

}  // namespace pcr::report
