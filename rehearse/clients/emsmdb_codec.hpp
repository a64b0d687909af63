// The client's half of EMSMDB ([MS-OXCRPC] 3.1.4) and of the remote operations a mailbox copy needs
// ([MS-OXCROPS] 2.2): request stubs for EcDoConnectEx, EcDoRpcExt2 and EcDoDisconnect, the ROP requests of a
// migration walk (logon, folders, tables, RopOpenMessage, FastTransfer download), and readers of their
// responses. Pure functions over bytes, as the migration service's MAPI provider builds them; fake-exchange's
// store is their counterpart, and unit tests run one against the other.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/le_bytes.hpp"
#include "common/mapi_props.hpp"

namespace exbridge::rehearse::emsmdb {

/// EMSMDB's opnums.
inline constexpr std::uint16_t op_disconnect = 1;
inline constexpr std::uint16_t op_connect_ex = 10;
inline constexpr std::uint16_t op_rpc_ext2 = 11;

/// A session context handle (CXH): 20 bytes, opaque.
using context_handle = std::array<std::uint8_t, 20>;

/// EcDoConnectEx's request for the mailbox whose legacy DN is `user_dn`, as Outlook 2007 (12.0.6023) sends it.
std::string connect_ex_request(std::string_view user_dn);

struct connect_ex_reply {
  context_handle handle{};
  std::uint32_t ec = 0;          ///< the call's return value
  std::string display_name;      ///< szDisplayName
  std::array<std::uint16_t, 3> server_version{};  ///< rgwServerVersion
};
/// nullopt for a stub that does not parse.
std::optional<connect_ex_reply> read_connect_ex(std::string_view stub);

/// "8.3.83.6" from rgwServerVersion's three words (the second with its high bit set: the new format).
std::string version_text(const std::array<std::uint16_t, 3>& words);

/// EcDoRpcExt2's request: one extended buffer (uncompressed, not obfuscated) around `rop_buffer` (RopSize,
/// the ROPs, the handle table); pcbOut the largest answer the client takes (0x40000 is the IDL's maximum).
std::string rpc_ext2_request(const context_handle& handle, std::string_view rop_buffer, std::uint32_t out_limit = 0x40000);

struct rpc_ext2_reply {
  std::uint32_t ec = 0;                 ///< the call's return value
  std::string rops;                     ///< the ROP responses (between RopSize and the handle table)
  std::vector<std::uint32_t> handles;   ///< the server object handle table
};
/// nullopt (and `why`) for a stub or an extended buffer that does not parse.
std::optional<rpc_ext2_reply> read_rpc_ext2(std::string_view stub, std::string* why = nullptr);

/// EcDoDisconnect's request.
std::string disconnect_request(const context_handle& handle);

/// The ROP request buffer of one EcDoRpcExt2 call, built ROP by ROP. Handle slots are indexes into the
/// handle table that finish() appends.
class rop_request {
 public:
  /// RopLogon to the private mailbox of `essdn` (LogonFlags Private, OpenFlags UseAdminPrivilege off).
  rop_request& logon(std::uint8_t out, std::string_view essdn);
  rop_request& open_folder(std::uint8_t in, std::uint8_t out, std::uint64_t folder_id);
  /// RopGetHierarchyTable with Depth (the whole subtree) when `deep`.
  rop_request& hierarchy_table(std::uint8_t in, std::uint8_t out, bool deep);
  rop_request& contents_table(std::uint8_t in, std::uint8_t out);
  rop_request& set_columns(std::uint8_t in, const std::vector<std::uint32_t>& columns);
  rop_request& query_rows(std::uint8_t in, std::uint16_t rows);
  rop_request& open_message(std::uint8_t in, std::uint8_t out, std::uint64_t folder_id, std::uint64_t message_id);
  /// RopFastTransferSourceCopyTo on a message: Level 0 (with recipients and attachments), CopyFlags BestBody,
  /// SendOptions Unicode, no property excluded -- what a mailbox move asks for.
  rop_request& copy_to(std::uint8_t in, std::uint8_t out);
  /// RopFastTransferSourceGetBuffer with BufferSize 0xBABE (as much as fits) up to `maximum` bytes.
  rop_request& get_buffer(std::uint8_t in, std::uint16_t maximum = 0x7000);
  rop_request& release(std::uint8_t in);

  /// RopSize, the ROPs, then `slots` handles (0xFFFFFFFF, or the given ones).
  std::string finish(const std::vector<std::uint32_t>& handles);
  bool empty() const { return rops_.size() == 0; }

 private:
  le_writer rops_;
};

/// RopLogon's response fields a walk needs.
struct logon_reply {
  std::array<std::uint64_t, 13> folders{};  ///< FolderIds: [3] is the IPM subtree, [4] the Inbox
};
/// One table row: each column's value (nullopt where the server had none).
using row = std::vector<std::optional<mapi::value>>;
struct rows_reply {
  bool at_end = false;  ///< Origin: the cursor reached the end of the table
  std::vector<row> rows;
};
struct buffer_reply {
  std::uint16_t status = 0;  ///< TransferStatus: 0 Error, 1 Partial, 2 NoRoom, 3 Done
  std::string data;          ///< TransferBuffer
};
namespace transfer_status {
inline constexpr std::uint16_t error = 0, partial = 1, no_room = 2, done = 3;
}

/// Reads the ROP responses of one EcDoRpcExt2 reply in order. Each read checks the RopId and returns the
/// ReturnValue through `ec`; a response cut short or of another ROP makes the reader fail (ok() false, error()
/// says where) and every later read return nullopt.
class rop_reader {
 public:
  explicit rop_reader(std::string_view rops) : rops_(rops), r_(as_bytes(rops_)) {}

  std::optional<logon_reply> logon(std::uint32_t& ec);
  bool open_folder(std::uint32_t& ec);
  /// RopGetHierarchyTable or RopGetContentsTable: the row count.
  std::optional<std::uint32_t> table(std::uint32_t& ec);
  bool set_columns(std::uint32_t& ec);
  std::optional<rows_reply> query_rows(const std::vector<std::uint32_t>& columns, std::uint32_t& ec);
  /// RopOpenMessage: the recipient count it announced.
  std::optional<std::uint16_t> open_message(std::uint32_t& ec);
  bool copy_to(std::uint32_t& ec);
  std::optional<buffer_reply> get_buffer(std::uint32_t& ec);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool at_end() const { return r_.left() == 0; }

 private:
  /// Reads RopId (must be `id`), the handle index and ReturnValue.
  bool head(std::uint8_t id, const char* name, std::uint32_t& ec);
  bool fail(std::string what);
  /// fail(), for readers that return an optional.
  std::nullopt_t missing(std::string what);

  std::string rops_;
  le_reader r_;
  std::string error_;
};

/// What a ReturnValue means, as Exchange names it ("ecNotFound (0x8004010F)").
std::string ec_name(std::uint32_t ec);

}  // namespace exbridge::rehearse::emsmdb
