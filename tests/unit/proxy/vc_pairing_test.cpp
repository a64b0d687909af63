// Outlook Anywhere channel pairing's memory (proxy/upstream/vc_pairing): placements are found until they
// expire, refreshed by each channel, and bounded.
#include <gtest/gtest.h>

#include "proxy/upstream/vc_pairing.hpp"

namespace exbridge::proxy {
namespace vc_pairing_test {

rts::cookie cookie_of(std::uint32_t n) {
  rts::cookie c{};
  for (int i = 0; i < 4; ++i) c[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  return c;
}

TEST(VcPairing, APlacementIsFoundUntilItExpiresAndEachChannelRefreshesIt) {
  vc_pairing p;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.find(cookie_of(1), t0));
  p.place(cookie_of(1), {"default", "cas1:443"}, t0);
  const auto found = p.find(cookie_of(1), t0 + std::chrono::hours(1));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->pool, "default");
  EXPECT_EQ(found->server, "cas1:443");
  EXPECT_FALSE(p.find(cookie_of(2), t0));
  // A replacement channel 20 hours later refreshes it; 24 hours after the last channel it is gone.
  p.place(cookie_of(1), {"default", "cas1:443"}, t0 + std::chrono::hours(20));
  EXPECT_TRUE(p.find(cookie_of(1), t0 + std::chrono::hours(30)));
  EXPECT_FALSE(p.find(cookie_of(1), t0 + std::chrono::hours(45)));
  EXPECT_EQ(p.size(), 0u);
}

TEST(VcPairing, TheTableIsBoundedAndDropsTheLeastRecentlyUsed) {
  vc_pairing p;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i <= vc_pairing::max_entries; ++i) {
    p.place(cookie_of(i), {"default", "cas1:443"}, t0 + std::chrono::milliseconds(i));
  }
  EXPECT_LE(p.size(), vc_pairing::max_entries);
  EXPECT_GE(p.size(), vc_pairing::max_entries * 9 / 10);
  EXPECT_FALSE(p.find(cookie_of(0), t0 + std::chrono::seconds(200)));  // the oldest went first
  EXPECT_TRUE(p.find(cookie_of(static_cast<std::uint32_t>(vc_pairing::max_entries)), t0 + std::chrono::seconds(200)));
}

}  // namespace vc_pairing_test
}  // namespace exbridge::proxy
