// Calls' outcomes and context handles (see rpc_call.hpp).
#include "fake_exchange/rpc_call.hpp"

#include <algorithm>

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/ntlm.hpp"

namespace exbridge::fake_exchange {

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
