// Calls' outcomes and context handles (see rpc_call.hpp).
#include "fake_exchange/rpc_call.hpp"

#include <algorithm>

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/ntlm.hpp"
#include "common/sha256.hpp"

namespace exbridge::fake_exchange {

std::array<std::uint8_t, 16> stable_guid(std::string_view text) {
  sha256 h;
  h.update(text);
  const std::string hex = h.hex_digest();
  std::array<std::uint8_t, 16> g{};
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return g;
}

context_handle new_context_handle() {
  context_handle h{};
  const auto a = ntlm_random_challenge(), b = ntlm_random_challenge();
  std::copy(a.begin(), a.end(), h.begin() + 4);
  std::copy(b.begin(), b.end(), h.begin() + 12);
  return h;
}

call_result close_context_handle(std::string_view stub, const std::function<bool(const context_handle&)>& forget,
                                 std::uint32_t result) {
  le_reader r(as_bytes(stub));
  if (!r.has(20)) return rpc_fault{dcerpc::status::bad_stub_data};
  context_handle h{};
  r.bytes(h.data(), h.size());
  if (!forget(h)) return rpc_fault{dcerpc::status::context_mismatch};
  le_writer w;
  w.zeros(20);
  w.u32(result);
  return std::move(w.text());
}

}  // namespace exbridge::fake_exchange
