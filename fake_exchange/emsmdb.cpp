// EMSMDB's session calls (see emsmdb.hpp), from [MS-OXCRPC]'s IDL and server processing rules.
#include "fake_exchange/emsmdb.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/ndr.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::uint32_t aux_out_limit = 0x1008;  // pcbAuxOut's [range(0x000, 0x1008)]

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

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
  if (r.u32() > aux_out_limit) return rpc_fault{0x000006C6};

  // The session is the caller's own mailbox, named by its legacy DN (szUserDN). Another user's DN
  // needs rights this lab does not grant (ecAccessDenied); a DN nobody has is ecUnknownUser.
  std::uint32_t ec = emsmdb_ec::none;
  const auto& org = server_->org;
  if (!iequal(*user_dn, org.legacy_dn(caller))) {
    const bool someone = std::any_of(org.users.begin(), org.users.end(),
                                     [&](const user& u) { return iequal(*user_dn, org.legacy_dn(u)); });
    ec = someone ? emsmdb_ec::access_denied : emsmdb_ec::unknown_user;
  }

  le_writer w;
  context_handle handle{};
  if (ec == emsmdb_ec::none) {
    handle = new_context_handle();
    sessions_[handle] = &caller;
  }
  w.bytes(handle.data(), handle.size());
  // Poll every 60 s, retry 6 times 10 s apart when busy -- what Exchange 2007 hands out.
  w.u32(60000), w.u32(6), w.u32(10000);
  w.u16(ec == emsmdb_ec::none ? next_index_++ : 0);  // picxr
  const std::string server_dn = "/o=" + org.name + "/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)";
  ndr::write_unique_string(w, ec == emsmdb_ec::none ? std::optional<std::string>(server_dn) : std::nullopt);
  ndr::write_unique_string(w, ec == emsmdb_ec::none ? std::optional<std::string>(caller.display_name) : std::nullopt);
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
  return close_context_handle(stub, [&](const context_handle& h) { return sessions_.erase(h) != 0; }, emsmdb_ec::none);
}

}  // namespace exbridge::fake_exchange
