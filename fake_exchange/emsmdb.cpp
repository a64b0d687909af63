// EMSMDB's session calls (see emsmdb.hpp), from [MS-OXCRPC]'s IDL and server processing rules.
#include "fake_exchange/emsmdb.hpp"

#include <algorithm>
#include <chrono>

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/ndr.hpp"
#include "common/rop_buffer.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::uint32_t aux_out_limit = 0x1008;  // pcbAuxOut's [range(0x000, 0x1008)]

/// EcDoConnectEx's rgwServerVersion: a version in the three-WORD form whose second word has the high bit set --
/// (major << 8 | minor), 0x8000 | build, revision -- e.g. 2007 SP3 8.3.83.6 as 0803 8053 0006.
std::array<std::uint16_t, 3> version_words(const version_profile& v) {
  return {static_cast<std::uint16_t>(v.major << 8 | v.minor), static_cast<std::uint16_t>(0x8000 | v.build),
          static_cast<std::uint16_t>(v.revision)};
}

}  // namespace

call_result emsmdb_server::call(std::uint16_t opnum, std::string_view stub, const user& caller) {
  switch (opnum) {
    case 1: return disconnect(stub);
    case 10: return connect(stub, caller);
    case 11: return rpc_ext2(stub);
    default: return rpc_fault{dcerpc::status::op_rng_error};
  }
}

call_result emsmdb_server::connect(std::string_view stub, const user& caller) {
  // EcDoConnectEx (opnum 10). In: szUserDN ([string] char*), ulFlags, ulConMod, cbLimit, ulCpid, ulLcidString,
  // ulLcidSort, ulIcxrLink (u32 each), usFCanConvertCodePages (u16), rgwClientVersion[3] (u16), pulTimeStamp,
  // rgbAuxIn (conformant: max_count then bytes), cbAuxIn, pcbAuxOut.
  le_reader r(as_bytes(stub));
  const auto user_dn = ndr::read_string(r);
  if (!user_dn || !ndr::align(r, 4) || !r.has(7 * 4 + 2 + 6)) return rpc_fault{dcerpc::status::bad_stub_data};
  r.skip(7 * 4 + 2 + 6);
  if (!ndr::align(r, 4) || !r.has(8)) return rpc_fault{dcerpc::status::bad_stub_data};
  r.skip(4);  // pulTimeStamp
  const std::uint32_t aux_in = r.u32();
  if (!r.has(aux_in)) return rpc_fault{dcerpc::status::bad_stub_data};
  r.skip(aux_in);
  if (!ndr::align(r, 4) || !r.has(8)) return rpc_fault{dcerpc::status::bad_stub_data};
  if (r.u32() != aux_in) return rpc_fault{dcerpc::status::bad_stub_data};  // cbAuxIn is rgbAuxIn's size_is
  // A [range] the stub enforces before the server sees the call: RPC_S_INVALID_BOUND.
  if (r.u32() > aux_out_limit) return rpc_fault{dcerpc::status::invalid_bound};

  // The session is the caller's own mailbox, named by its legacy DN (szUserDN). Another user's DN
  // needs rights this lab does not grant (ecAccessDenied); a DN nobody has is ecUnknownUser.
  const auto& org = server_->org;
  const user* named = org.find_legacy_dn(*user_dn);
  const std::uint32_t ec = named == nullptr ? mapi_ec::unknown_user : named != &caller ? mapi_ec::access_denied : mapi_ec::none;

  le_writer w;
  context_handle handle{};
  if (ec == mapi_ec::none) {
    handle = new_context_handle();
    sessions_.emplace(handle, store_session(*server_, caller));
  }
  w.bytes(handle.data(), handle.size());
  // Poll every 60 s, retry 6 times 10 s apart when busy -- what Exchange 2007 hands out.
  w.u32(60000), w.u32(6), w.u32(10000);
  w.u16(ec == mapi_ec::none ? next_index_++ : 0);  // picxr
  const std::string server_dn = "/o=" + org.name + "/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)";
  ndr::write_unique_string(w, ec == mapi_ec::none ? std::optional<std::string>(server_dn) : std::nullopt);
  ndr::write_unique_string(w, ec == mapi_ec::none ? std::optional<std::string>(caller.display_name) : std::nullopt);
  const auto version = version_words(*server_->version);
  for (int pass = 0; pass < 2; ++pass) {  // rgwServerVersion, then rgwBestVersion: this server's own
    w.align(2);
    for (const auto v : version) w.u16(v);
  }
  w.align(4);
  w.u32(static_cast<std::uint32_t>(  // pulTimeStamp: when the session began
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()));
  w.u32(0), w.u32(0), w.u32(0);  // rgbAuxOut: no auxiliary output (max_count, offset, actual_count)
  w.u32(0);                      // pcbAuxOut
  w.u32(ec);
  return std::move(w.text());
}

call_result emsmdb_server::disconnect(std::string_view stub) {
  // EcDoDisconnect (opnum 1, [in, out, ref] CXH* pcxh): the handle comes back zeroed; one this association never
  // issued is the runtime's to refuse (nca_s_fault_context_mismatch), as for NSPI.
  return close_context_handle(stub, [&](const context_handle& h) { return sessions_.erase(h) != 0; }, mapi_ec::none);
}

call_result emsmdb_server::rpc_ext2(std::string_view stub) {
  // EcDoRpcExt2 (opnum 11). In: pcxh, pulFlags, rgbIn (conformant: max_count, bytes), cbIn, pcbOut, rgbAuxIn
  // (conformant), cbAuxIn, pcbAuxOut. Out: pcxh, pulFlags, rgbOut (max_count, offset, actual_count, bytes),
  // pcbOut, rgbAuxOut, pcbAuxOut, pulTransTime, the return value.
  le_reader r(as_bytes(stub));
  if (!r.has(20 + 4 + 4)) return rpc_fault{dcerpc::status::bad_stub_data};
  context_handle handle{};
  r.bytes(handle.data(), handle.size());
  r.skip(4);  // pulFlags: NoCompression, NoXorMagic, Chain -- this server neither compresses nor obfuscates
  const std::uint32_t in_size = r.u32();
  if (!r.has(in_size)) return rpc_fault{dcerpc::status::bad_stub_data};
  const std::string in = r.text(in_size);
  if (!ndr::align(r, 4) || !r.has(12)) return rpc_fault{dcerpc::status::bad_stub_data};
  if (r.u32() != in_size) return rpc_fault{dcerpc::status::bad_stub_data};  // cbIn is rgbIn's size_is
  const std::uint32_t out_limit = r.u32();
  const std::uint32_t aux_in = r.u32();
  if (!r.has(aux_in)) return rpc_fault{dcerpc::status::bad_stub_data};
  r.skip(aux_in);
  if (!ndr::align(r, 4) || !r.has(8) || r.u32() != aux_in) return rpc_fault{dcerpc::status::bad_stub_data};
  const std::uint32_t aux_out_limit_in = r.u32();
  // The IDL's ranges, enforced by the stub before the server runs: cbIn and pcbOut 8..0x40000, pcbAuxOut to 0x1008.
  constexpr std::uint32_t big_range = 0x40000;
  if (in_size < 8 || in_size > big_range || out_limit < 8 || out_limit > big_range || aux_out_limit_in > aux_out_limit) {
    return rpc_fault{dcerpc::status::invalid_bound};
  }
  auto session = sessions_.find(handle);
  if (session == sessions_.end()) return rpc_fault{dcerpc::status::context_mismatch};

  std::uint32_t ec = mapi_ec::none;
  std::string out;
  auto payloads = rop::read_extended(in);
  if (std::holds_alternative<rop::error>(payloads)) {
    ec = mapi_ec::rpc_format;
  } else {
    for (const auto& payload : std::get<std::vector<std::string>>(payloads)) {
      auto buffer = rop::read_request_buffer(payload);
      if (std::holds_alternative<rop::error>(buffer)) {
        ec = mapi_ec::rpc_format;
        break;
      }
      // Each response goes in an extended buffer of its own: at most 32 KiB, and no more than pcbOut has left.
      const std::size_t left = out_limit > out.size() + rop::ext_header_size ? out_limit - out.size() - rop::ext_header_size : 0;
      auto result = session->second.execute(std::get<rop::request_buffer>(buffer), std::min(left, rop::max_ext_payload));
      if (auto* failed = std::get_if<std::uint32_t>(&result)) {
        ec = *failed;
        break;
      }
      out += rop::write_extended(std::get<std::string>(result));
    }
  }
  if (ec == mapi_ec::none && out.size() > out_limit) ec = mapi_ec::buffer_too_small;
  if (ec != mapi_ec::none) out.clear();

  le_writer w;
  w.bytes(handle.data(), handle.size());
  w.u32(0);  // pulFlags
  const auto n = static_cast<std::uint32_t>(out.size());
  w.u32(n), w.u32(0), w.u32(n);
  w.bytes(out);
  w.align(4);
  w.u32(n);                      // pcbOut
  w.u32(0), w.u32(0), w.u32(0);  // rgbAuxOut: none
  w.u32(0);                      // pcbAuxOut
  w.u32(0);                      // pulTransTime
  w.u32(ec);
  return std::move(w.text());
}

}  // namespace exbridge::fake_exchange
