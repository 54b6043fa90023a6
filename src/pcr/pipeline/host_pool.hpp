#pragma once

#include <pcr/pipeline/model.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace pcr::pipeline {

// The run's hosts as the engine sees them: which answer, and which host each worker slot
// lives on. Pure bookkeeping: probing (a process) is the engine's; this decides where.
//
// Slots are placed lazily, each on the host that answers with the lowest load per capacity
// after taking it (the lowest index on a tie), so workers 1, 2, 3, … interleave over the
// hosts in proportion to their capacity. A slot stays on its host for the run unless
// `move` takes it to another that answers.
class HostPool {
 public:
  explicit HostPool(const std::vector<Host>& hosts);

  std::size_t size() const { return m_up.size(); }
  bool empty() const { return m_up.empty(); }
  bool up(std::size_t host) const { return m_up[host]; }
  std::size_t up_count() const;
  unsigned capacity_up() const;  // the summed `workers` of the hosts that answer
  // Mark `host` as not answering, for `reason`; it stays down for the run.
  void set_down(std::size_t host, std::string reason);
  const std::string& reason(std::size_t host) const { return m_reason[host]; }
  // "host b stopped answering (why)"
  std::string lost(std::size_t host) const;

  // The host of worker `slot` (1-based), placing it (and the slots before it) if new.
  std::size_t slot_host(unsigned slot);
  // Move `slot` off its host when that host is down, to the best host that answers: the
  // new host, or nullopt when it stays (its host answers, or none does).
  std::optional<std::size_t> move(unsigned slot);

  // Workers 1..n placed on `hosts` as a run places them when every host answers.
  static std::vector<std::size_t> placement(const std::vector<Host>& hosts, unsigned n);

 private:
  std::size_t pick() const;

  const std::vector<Host>& m_hosts;
  std::vector<bool> m_up;
  std::vector<std::string> m_reason;
  std::vector<unsigned> m_load;           // worker slots placed on each host
  std::vector<std::size_t> m_slot_host;  // slot - 1 → host
};

}  // namespace pcr::pipeline
