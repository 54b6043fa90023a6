#include <pcr/pipeline/host_pool.hpp>
#include <pcr/util/assert.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace pcr::pipeline {

namespace {

// Among the hosts `up` (every host when none is), the one with the lowest load per
// capacity after taking one more worker; the lowest index on a tie.
std::size_t pick_host(const std::vector<Host>& hosts, const std::vector<bool>& up,
                      const std::vector<unsigned>& load) {
  const bool any_up = std::find(up.begin(), up.end(), true) != up.end();
  std::size_t best = 0;
  bool found = false;
  for (std::size_t h = 0; h < hosts.size(); ++h) {
    if (any_up && !up[h]) continue;
    const auto cap = std::max(1u, hosts[h].workers);
    const auto best_cap = std::max(1u, hosts[best].workers);
    // (load+1)/cap < (best_load+1)/best_cap, in integers.
    if (!found || static_cast<std::uint64_t>(load[h] + 1) * best_cap <
                      static_cast<std::uint64_t>(load[best] + 1) * cap)
      best = h, found = true;
  }
  return best;
}

}  // namespace

HostPool::HostPool(const std::vector<Host>& hosts)
    : m_hosts(hosts), m_up(hosts.size(), true), m_reason(hosts.size()), m_load(hosts.size(), 0) {}

std::size_t HostPool::up_count() const {
  return static_cast<std::size_t>(std::count(m_up.begin(), m_up.end(), true));
}

unsigned HostPool::capacity_up() const {
  unsigned sum = 0;
  for (std::size_t h = 0; h < m_hosts.size(); ++h)
    if (m_up[h]) sum += m_hosts[h].workers;
  return sum;
}

void HostPool::set_down(std::size_t host, std::string reason) {
  m_up[host] = false;
  m_reason[host] = std::move(reason);
}

std::string HostPool::lost(std::size_t host) const {
  return fmt::format("host {} stopped answering ({})", m_hosts[host].name, m_reason[host]);
}

std::size_t HostPool::pick() const { return pick_host(m_hosts, m_up, m_load); }

std::size_t HostPool::slot_host(unsigned slot) {
  PCR_ASSERT(slot >= 1 && !m_hosts.empty());
  while (m_slot_host.size() < slot) {
    const std::size_t h = pick();
    ++m_load[h];
    m_slot_host.push_back(h);
  }
  return m_slot_host[slot - 1];
}

std::optional<std::size_t> HostPool::move(unsigned slot) {
  const std::size_t from = slot_host(slot);
  if (m_up[from]) return std::nullopt;
  const std::size_t to = pick();
  if (!m_up[to]) return std::nullopt;
  --m_load[from];
  ++m_load[to];
  m_slot_host[slot - 1] = to;
  return to;
}

std::vector<std::size_t> HostPool::placement(const std::vector<Host>& hosts, unsigned n) {
  HostPool pool(hosts);
  std::vector<std::size_t> out;
  for (unsigned w = 1; w <= n && !hosts.empty(); ++w) out.push_back(pool.slot_host(w));
  return out;
}

}  // namespace pcr::pipeline
