// Outlook Anywhere channel pairing: which upstream server holds each virtual connection. An RPC over HTTP
// virtual connection is two HTTP requests (the IN and the OUT channel, later their replacements) that the RPC
// proxy joins by the cookie of their first PDUs ([MS-RPCH] CONN/A1, CONN/B1, IN_R1/A1, OUT_R1/A3); behind a pool
// of several Client Access servers, every channel of one connection must reach the same server, or the server
// waits 15 minutes for a channel that went elsewhere. exbridge reads the cookie before it chooses the server (as
// Apache's mod_proxy_msrpc does; HAProxy can only pin by source address, which breaks when the two channels
// come from different addresses or a channel is replaced on a new connection) and remembers the placement here.
//
// Kept across reloads (names, not pointers), bounded, and shared by every thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "common/rts.hpp"

namespace exbridge::proxy {

class vc_pairing {
 public:
  struct placement {
    std::string pool;
    std::string server;  ///< the server's name in its pool ("host:port")
  };

  /// A placement is forgotten this long after the last channel that used it (a replacement OUT channel may come
  /// hours later: one carries 1 GB).
  static constexpr std::chrono::hours ttl{24};
  /// At most this many virtual connections are remembered; past it the least recently used go first.
  static constexpr std::size_t max_entries = 100'000;

  /// Where a channel of `vc` went, if one did within the ttl.
  std::optional<placement> find(const rts::cookie& vc, std::chrono::steady_clock::time_point now);
  /// Records (or refreshes) that a channel of `vc` went to `where`.
  void place(const rts::cookie& vc, placement where, std::chrono::steady_clock::time_point now);
  std::size_t size() const;

 private:
  struct entry {
    placement where;
    std::chrono::steady_clock::time_point used;
  };
  mutable std::mutex mutex_;
  std::map<rts::cookie, entry> table_;
};

}  // namespace exbridge::proxy
