// One EMSMDB session's side of the remote operations ([MS-OXCROPS], [MS-OXCSTOR], [MS-OXCFOLD], [MS-OXCTABL]):
// its server objects, the handle table each ROP buffer carries, and the ROPs a migration walk needs so far --
// RopLogon to the session owner's own private mailbox, RopOpenFolder, RopGetPropertiesSpecific on folders,
// RopGetHierarchyTable, RopGetContentsTable, RopSetColumns, RopQueryRows, RopOpenMessage, RopFastTransferSourceCopyTo
// on a message, RopFastTransferSourceGetBuffer ([MS-OXCMSG], [MS-OXCFXICS]) and RopRelease, over the same folder
// tree and synthetic mailbox EWS serves. Pure: a ROP request buffer in, a ROP response buffer out.
//
// A ROP not served gets a response with ecNotSupported (0x80040102) and ends the buffer there: a ROP's request
// length depends on its id, so the ones after it cannot be found (the client sees fewer responses than it sent,
// and stops).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "common/le_bytes.hpp"
#include "common/mapi_props.hpp"
#include "common/rop_buffer.hpp"
#include "fake_exchange/exchange_config.hpp"
#include "fake_exchange/folder_tree.hpp"
#include "fake_exchange/fx_message.hpp"
#include "fake_exchange/mailbox.hpp"

namespace exbridge::fake_exchange {

/// The store's return codes -- of EcDoConnectEx, EcDoRpcExt2 and the ROPs ([MS-OXCDATA] 2.4, [MS-OXCSTOR]
/// 3.2.5.1.3).
namespace mapi_ec {
inline constexpr std::uint32_t none = 0;
inline constexpr std::uint32_t unknown_user = 0x000003EB;
inline constexpr std::uint32_t rpc_format = 0x000004B6;
inline constexpr std::uint32_t null_object = 0x000004B9;
inline constexpr std::uint32_t buffer_too_small = 0x0000047D;
inline constexpr std::uint32_t not_supported = 0x80040102;
inline constexpr std::uint32_t not_found = 0x8004010F;
inline constexpr std::uint32_t login_failure = 0x80040111;
inline constexpr std::uint32_t access_denied = 0x80070005;
inline constexpr std::uint32_t invalid_parameter = 0x80070057;
}  // namespace mapi_ec

/// IDs ([MS-OXCDATA] 2.2.1.1, 2.2.1.2): ReplicaId 1, then the 48-bit global counter big-endian, as the u64 a
/// little-endian read of the wire gives. A folder's counter is folder_counter(); a message's is its folder's
/// shifted left 24 bits plus its index + 1, so no two objects share one.
std::uint64_t store_id(std::uint64_t global_counter);
std::uint64_t folder_id(const folder_info& f);
std::uint64_t message_id(const folder_info& f, unsigned index);

class store_session {
 public:
  store_session(const exchange_config& server, const user& owner)
      : server_(&server), owner_(&owner), box_(owner, server.mailboxes) {}

  /// Runs one ROP request buffer whose response may take `room` bytes (RopSize, the ROPs and the handle table).
  /// Returns the response buffer, or the EcDoRpcExt2 return value that fails the whole call (ecRpcFormat for a
  /// buffer that cannot be parsed).
  std::variant<std::string, std::uint32_t> execute(const rop::request_buffer& in,
                                                   std::size_t room = rop::max_ext_payload);

  const user& owner() const { return *owner_; }
  std::size_t objects() const { return objects_.size(); }

 private:
  enum class kind { logon, folder, hierarchy_table, contents_table, message, download };
  struct object {
    kind what = kind::logon;
    const folder_info* folder = nullptr;   ///< folders, tables and messages: the folder
    unsigned index = 0;                    ///< messages: the item's index in its folder
    std::shared_ptr<message_stream> stream;  ///< download contexts: what GetBuffer hands out
    bool deep = false;                     ///< hierarchy tables: the whole subtree, not only the children
    bool associated = false;               ///< contents tables: the folder's associated (FAI) messages
    std::vector<std::uint32_t> columns;    ///< tables: set by RopSetColumns
    bool columns_set = false;
    std::size_t cursor = 0;                ///< tables: the next row
  };

  // Each reads its request after the 3-byte prefix and writes its response; false for a request cut short.
  bool logon(le_reader& r, std::uint8_t index, std::vector<std::uint32_t>& handles, le_writer& out);
  bool open_folder(le_reader& r, std::uint8_t in, std::vector<std::uint32_t>& handles, le_writer& out);
  bool get_table(le_reader& r, std::uint8_t rop_id, std::uint8_t in, std::vector<std::uint32_t>& handles, le_writer& out);
  bool set_columns(le_reader& r, std::uint8_t in, const std::vector<std::uint32_t>& handles, le_writer& out);
  bool query_rows(le_reader& r, std::uint8_t in, const std::vector<std::uint32_t>& handles, le_writer& out);
  bool get_properties(le_reader& r, std::uint8_t in, const std::vector<std::uint32_t>& handles, le_writer& out);
  bool open_message(le_reader& r, std::uint8_t in, std::vector<std::uint32_t>& handles, le_writer& out);
  bool copy_to(le_reader& r, std::uint8_t in, std::vector<std::uint32_t>& handles, le_writer& out);
  /// Returns false for a request cut short; sets `needed` (what its answer takes) when it does not fit `room`.
  bool get_buffer(le_reader& r, std::uint8_t in, const std::vector<std::uint32_t>& handles, std::size_t room,
                  le_writer& out, std::size_t& needed);

  object* find(std::uint32_t handle, std::initializer_list<kind> kinds);
  std::uint32_t add(object o);
  std::size_t row_count(const object& table) const;
  std::vector<mapi::property> row(const object& table, std::size_t i) const;
  std::vector<mapi::property> folder_properties(const folder_info& f) const;

  const exchange_config* server_;
  const user* owner_;
  mailbox box_;
  std::map<std::uint32_t, object> objects_;  ///< server object handles
  std::uint32_t next_handle_ = 0x10;
};

}  // namespace exbridge::fake_exchange
