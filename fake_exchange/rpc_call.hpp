// What the RPC interfaces behind fake-exchange's endpoint (NSPI, EMSMDB) share: a call's outcome -- a response
// stub or the fault the RPC runtime sends instead -- and context handles, which the runtime checks before a call
// reaches the server.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>

namespace exbridge::fake_exchange {

/// A context handle on the wire (C706 NDR context_handle): attributes (0) and a UUID.
using context_handle = std::array<std::uint8_t, 20>;

/// An RPC call's outcome: the response stub, or the fault status the runtime returns instead.
struct rpc_fault {
  std::uint32_t status = 0;
};
using call_result = std::variant<std::string, rpc_fault>;

/// A new handle: attributes 0, a random UUID.
context_handle new_context_handle();

/// 16 bytes from the SHA-256 of `text`: a GUID that stays the same from run to run for the same name (the
/// server's, a mailbox's, its replica's).
std::array<std::uint8_t, 16> stable_guid(std::string_view text);

/// The calls that take a handle in and give it back cleared with one result code (NspiUnbind, EcDoDisconnect):
/// `forget` closes the handle and says whether this association had issued it. One it never issued (or already
/// closed) never reaches the server: the runtime faults it with nca_s_fault_context_mismatch.
call_result close_context_handle(std::string_view stub, const std::function<bool(const context_handle&)>& forget,
                                 std::uint32_t result);

}  // namespace exbridge::fake_exchange
