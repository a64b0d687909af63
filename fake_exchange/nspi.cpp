// NSPI's session calls (see nspi.hpp).
#include "fake_exchange/nspi.hpp"

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/ndr.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::uint32_t cp_winunicode = 1200;

}  // namespace

call_result nspi_server::call(std::uint16_t opnum, std::string_view stub) {
  switch (opnum) {
    case 0: return bind(stub);
    case 1: return unbind(stub);
    default: return rpc_fault{dcerpc::status::op_rng_error};
  }
}

call_result nspi_server::bind(std::string_view stub) {
  // [MS-OXNSPI] 3.1.4.1.1: long NspiBind([in] handle_t, [in] DWORD dwFlags, [in] STAT* pStat,
  // [in, out, unique] FlatUID_r* pServerGuid, [out, ref] NSPI_HANDLE* contextHandle).
  // NDR: dwFlags, the STAT's nine u32 (CodePage the seventh), the unique pointer's referent id and its 16 bytes.
  le_reader r(as_bytes(stub));
  if (!r.has(4 + 36 + 4)) return rpc_fault{dcerpc::status::bad_stub_data};
  r.skip(4);  // dwFlags: only fAnonymousLogin means anything, and this server requires a logon anyway
  r.skip(24);
  const std::uint32_t code_page = r.u32();
  r.skip(8);
  const bool wants_guid = r.u32() != 0;
  if (wants_guid && !r.has(16)) return rpc_fault{dcerpc::status::bad_stub_data};

  le_writer w;
  if (code_page == cp_winunicode) {
    // The session's code page is for 8-bit strings; CP_WINUNICODE is refused, and a failed bind returns a NULL
    // server GUID and a NULL handle.
    w.u32(0);
    w.zeros(20);
    w.u32(nspi_ec::invalid_codepage);
    return std::move(w.text());
  }
  if (wants_guid) {
    w.u32(ndr::referent);
    w.bytes(server_guid_.data(), server_guid_.size());
  } else {
    w.u32(0);
  }
  const auto handle = new_context_handle();
  handles_.insert(handle);
  w.bytes(handle.data(), handle.size());
  w.u32(nspi_ec::success);
  return std::move(w.text());
}

call_result nspi_server::unbind(std::string_view stub) {
  // [MS-OXNSPI] 3.1.4.1.2: DWORD NspiUnbind([in, out] NSPI_HANDLE* contextHandle, [in] DWORD Reserved);
  // the handle comes back zeroed with UnbindSuccess. A handle this association never issued (or already closed)
  // never reaches the server: the RPC runtime faults it with nca_s_fault_context_mismatch.
  if (stub.size() < 20 + 4) return rpc_fault{dcerpc::status::bad_stub_data};
  return close_context_handle(stub, [&](const context_handle& h) { return handles_.erase(h) != 0; },
                              nspi_ec::unbind_success);
}

}  // namespace exbridge::fake_exchange
