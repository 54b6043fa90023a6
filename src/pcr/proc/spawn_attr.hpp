#pragma once

#include <signal.h>
#include <spawn.h>

namespace pcr::proc {

// posix_spawn attributes for every process pcr starts: an empty signal mask and every
// signal at its default (pcr's own mask and ignored SIGPIPE are not the child's), plus
// `flags` (POSIX_SPAWN_SETSID, or POSIX_SPAWN_SETPGROUP for a group of its own).
class SpawnAttr {
 public:
  explicit SpawnAttr(short flags) {
    posix_spawnattr_init(&m_attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&m_attr, &none);
    posix_spawnattr_setsigdefault(&m_attr, &all);
    if (flags & POSIX_SPAWN_SETPGROUP) posix_spawnattr_setpgroup(&m_attr, 0);
    posix_spawnattr_setflags(&m_attr, static_cast<short>(flags | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
  }
  ~SpawnAttr() { posix_spawnattr_destroy(&m_attr); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  const posix_spawnattr_t* get() const { return &m_attr; }

 private:
  posix_spawnattr_t m_attr;
};

}  // namespace pcr::proc
