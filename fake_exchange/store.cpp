// The ROPs of one EMSMDB session (see store.hpp).
#include "fake_exchange/store.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>

#include "common/le_bytes.hpp"
#include "common/sha256.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::uint8_t rop_release = 0x01, rop_logon = 0xFE;
constexpr std::uint8_t logon_private = 0x01;
/// [MS-OXCSTOR] 2.2.1.1.3 ResponseFlags: Reserved (must be set), OwnerRight, SendAsRight.
constexpr std::uint8_t response_flags_owner = 0x01 | 0x02 | 0x04;

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

/// 16 bytes derived from `text`: stable GUIDs for a mailbox and its replica.
std::string guid_of(std::string_view text) {
  sha256 h;
  h.update(text);
  const std::string hex = h.hex_digest();
  std::string g;
  for (std::size_t i = 0; i < 16; ++i) g += static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return g;
}

/// [MS-OXCSTOR] 2.2.1.1.3 LogonTime: Seconds, Minutes, Hour, DayOfWeek, Day, Month, Year (u16), UTC.
void put_logon_time(le_writer& w) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm t{};
  gmtime_r(&now, &t);
  w.u8(static_cast<std::uint8_t>(t.tm_sec)), w.u8(static_cast<std::uint8_t>(t.tm_min));
  w.u8(static_cast<std::uint8_t>(t.tm_hour)), w.u8(static_cast<std::uint8_t>(t.tm_wday));
  w.u8(static_cast<std::uint8_t>(t.tm_mday)), w.u8(static_cast<std::uint8_t>(t.tm_mon + 1));
  w.u16(static_cast<std::uint16_t>(t.tm_year + 1900));
}

}  // namespace

std::uint64_t folder_id(std::uint64_t global_counter) {
  std::uint64_t id = 0x0001;  // ReplicaId 1: bytes 0-1
  for (int i = 0; i < 6; ++i) id |= ((global_counter >> (8 * (5 - i))) & 0xFF) << (8 * (2 + i));
  return id;
}

std::variant<std::string, std::uint32_t> store_session::execute(const rop::request_buffer& in) {
  le_reader r(as_bytes(in.rops));
  std::vector<std::uint32_t> handles = in.handles;
  le_writer out;
  while (r.left() > 0) {
    if (!r.has(3)) return mapi_ec::rpc_format;
    const std::uint8_t rop_id = r.u8();
    r.u8();  // LogonId: one logon per session here
    const std::uint8_t index = r.u8();  // OutputHandleIndex for RopLogon, InputHandleIndex for the others
    if (index >= handles.size()) return mapi_ec::rpc_format;
    if (rop_id == rop_release) {
      objects_.erase(handles[index]);  // [MS-OXCROPS] 2.2.15.3: RopRelease has no response
      continue;
    }
    if (rop_id != rop_logon) {
      out.u8(rop_id), out.u8(index), out.u32(mapi_ec::not_supported);
      break;
    }
    // [MS-OXCROPS] 2.2.3.1.1: LogonFlags, OpenFlags, StoreState, EssdnSize, Essdn (NUL-terminated).
    if (!r.has(1 + 4 + 4 + 2)) return mapi_ec::rpc_format;
    const std::uint8_t logon_flags = r.u8();
    r.skip(8);
    const std::uint16_t essdn_size = r.u16();
    if (!r.has(essdn_size)) return mapi_ec::rpc_format;
    std::string essdn = r.text(essdn_size);
    while (!essdn.empty() && essdn.back() == '\0') essdn.pop_back();

    // [MS-OXCSTOR] 3.2.5.1.1 and 3.2.5.1.3: an ESSDN nobody has is ecUnknownUser; another user's mailbox needs
    // rights this lab does not grant, ecAccessDenied; the lab has no public folder database, ecLoginFailure.
    const auto& org = server_->org;
    std::uint32_t ec = mapi_ec::none;
    if (!(logon_flags & logon_private)) {
      ec = mapi_ec::login_failure;
    } else if (!iequal(essdn, org.legacy_dn(*owner_))) {
      const bool someone = std::any_of(org.users.begin(), org.users.end(),
                                       [&](const user& u) { return iequal(essdn, org.legacy_dn(u)); });
      ec = someone ? mapi_ec::access_denied : mapi_ec::unknown_user;
    }
    out.u8(rop_logon), out.u8(index), out.u32(ec);
    if (ec != mapi_ec::none) continue;
    const std::uint32_t handle = next_handle_++;
    objects_[handle] = object{kind::logon};
    handles[index] = handle;
    // [MS-OXCSTOR] 2.2.1.1.3: the private mailbox's success response.
    out.u8(logon_flags);
    for (std::uint64_t counter = 1; counter <= 13; ++counter) {  // root, deferred action, ... shortcuts
      const std::uint64_t fid = folder_id(counter);
      out.u32(static_cast<std::uint32_t>(fid)), out.u32(static_cast<std::uint32_t>(fid >> 32));
    }
    out.u8(response_flags_owner);
    const std::string dn = org.legacy_dn(*owner_);
    out.bytes(guid_of("mailbox " + dn));
    out.u16(0x0001);                      // ReplId
    out.bytes(guid_of("replica " + dn));  // ReplGuid
    put_logon_time(out);
    out.u32(0), out.u32(0);  // GwartTime: no address book changes to report
    out.u32(0);              // StoreState
  }
  return rop::write_response_buffer(out.text(), handles);
}

}  // namespace exbridge::fake_exchange
