// Outlook Anywhere channel pairing (see vc_pairing.hpp).
#include "proxy/upstream/vc_pairing.hpp"

#include <algorithm>
#include <vector>

namespace exbridge::proxy {

std::optional<vc_pairing::placement> vc_pairing::find(const rts::cookie& vc, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  const auto it = table_.find(vc);
  if (it == table_.end()) return std::nullopt;
  if (now - it->second.used > ttl) {
    table_.erase(it);
    return std::nullopt;
  }
  return it->second.where;
}

void vc_pairing::place(const rts::cookie& vc, placement where, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  table_[vc] = entry{std::move(where), now};
  if (table_.size() <= max_entries) return;
  // Full: drop what expired, and then the least recently used tenth.
  std::erase_if(table_, [&](const auto& e) { return now - e.second.used > ttl; });
  if (table_.size() <= max_entries) return;
  std::vector<std::chrono::steady_clock::time_point> times;
  times.reserve(table_.size());
  for (const auto& [cookie, e] : table_) times.push_back(e.used);
  auto cut = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 10);
  std::nth_element(times.begin(), cut, times.end());
  const auto oldest_kept = *cut;
  std::erase_if(table_, [&](const auto& e) { return e.second.used < oldest_kept; });
}

std::size_t vc_pairing::size() const {
  std::lock_guard lock(mutex_);
  return table_.size();
}

}  // namespace exbridge::proxy
