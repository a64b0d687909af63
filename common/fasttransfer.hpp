// FastTransfer streams ([MS-OXCFXICS] 2.2.4): the byte stream RopFastTransferSourceGetBuffer hands out in pieces,
// a sequence of atoms -- markers (a bare u32 tag) and property values (tag, for a named property its name, then
// the value). Writers for the server, and an incremental parser for clients: bytes go in split anywhere (a
// GetBuffer boundary falls where it likes, inside a tag or a value), events come out, and a value of any size
// passes through in pieces, never held whole. Pure functions over bytes; the parser is fuzzed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace exbridge::fx {

/// Markers ([MS-OXCFXICS] 2.2.4.1.4): tags with no value that open and close the stream's structures.
namespace marker {
inline constexpr std::uint32_t new_attach = 0x40000003;
inline constexpr std::uint32_t start_embed = 0x40010003;
inline constexpr std::uint32_t end_embed = 0x40020003;
inline constexpr std::uint32_t start_recip = 0x40030003;
inline constexpr std::uint32_t end_to_recip = 0x40040003;
inline constexpr std::uint32_t start_top_fld = 0x40090003;
inline constexpr std::uint32_t start_sub_fld = 0x400A0003;
inline constexpr std::uint32_t end_folder = 0x400B0003;
inline constexpr std::uint32_t start_message = 0x400C0003;
inline constexpr std::uint32_t end_message = 0x400D0003;
inline constexpr std::uint32_t end_attach = 0x400E0003;
inline constexpr std::uint32_t start_fai_msg = 0x40100003;
inline constexpr std::uint32_t incr_sync_chg = 0x40120003;
inline constexpr std::uint32_t incr_sync_del = 0x40130003;
inline constexpr std::uint32_t incr_sync_end = 0x40140003;
inline constexpr std::uint32_t incr_sync_message = 0x40150003;
inline constexpr std::uint32_t fx_error_info = 0x40180003;
inline constexpr std::uint32_t incr_sync_read = 0x402F0003;
inline constexpr std::uint32_t incr_sync_state_begin = 0x403A0003;
inline constexpr std::uint32_t incr_sync_state_end = 0x403B0003;
inline constexpr std::uint32_t incr_sync_chg_partial = 0x407D0003;
}  // namespace marker

/// Meta-properties ([MS-OXCFXICS] 2.2.4.1.5): ordinary property values with a stream-level meaning.
namespace meta {
/// Value: the tag of the subobject list that follows (recipients 0x0E12000D, attachments 0x0E13000D).
inline constexpr std::uint32_t fx_del_prop = 0x40160003;
inline constexpr std::uint32_t ec_warning = 0x400F0003;
inline constexpr std::uint32_t dn_prefix = 0x4008001E;
}  // namespace meta

/// The subobject lists FXDelProp names ([MS-OXPROPS] PidTagMessageRecipients, PidTagMessageAttachments).
inline constexpr std::uint32_t message_recipients = 0x0E12000D;
inline constexpr std::uint32_t message_attachments = 0x0E13000D;

bool is_marker(std::uint32_t tag);
/// "0x0037001F": a tag as refusals name it.
std::string hex32(std::uint32_t v);
/// The size of a fixed-size value of `type` in a FastTransfer stream (PtypBoolean takes 2 bytes here, 1 in ROP
/// buffers); 0 for a variable-size or unknown type.
std::size_t fixed_size(std::uint16_t type);
/// Whether values of `type` carry a u32 length: strings (PtypString8, PtypString, code-page strings 0x8000|cpid),
/// PtypBinary, PtypServerId, PtypObject.
bool is_variable(std::uint16_t type);

// Writers: each appends one atom to `out`.
void put_marker(std::string& out, std::uint32_t marker);
void put_u16(std::string& out, std::uint32_t tag, std::uint16_t v);  ///< PtypInteger16, PtypBoolean
void put_u32(std::string& out, std::uint32_t tag, std::uint32_t v);  ///< PtypInteger32, PtypErrorCode
void put_u64(std::string& out, std::uint32_t tag, std::uint64_t v);  ///< PtypInteger64, PtypTime
void put_binary(std::string& out, std::uint32_t tag, std::string_view bytes);
/// A string from UTF-8, in the encoding its tag's type names: PtypString as UTF-16LE, PtypString8 and code
/// page 1200 as their bytes; each with its terminating NUL counted in the length, as Exchange writes it.
void put_string(std::string& out, std::uint32_t tag, std::string_view utf8);
/// The start of a variable-size value whose `length` bytes the caller streams after it.
void put_value_header(std::string& out, std::uint32_t tag, std::uint32_t length);

/// A named property's name ([MS-OXCFXICS] 2.2.4.1.1 propDef: PropertySet GUID, then a u8 kind -- 0 a u32 LID,
/// 1 a NUL-terminated UTF-16LE name).
struct named_property {
  std::array<std::uint8_t, 16> guid{};
  std::optional<std::uint32_t> lid;
  std::string name;  ///< UTF-8
};

/// What the parser finds, in stream order. Defaults ignore everything.
class handler {
 public:
  virtual ~handler() = default;
  virtual void on_marker(std::uint32_t /*tag*/) {}
  /// A property value starts; `count` is 1, or a multi-valued property's element count.
  virtual void on_property(std::uint32_t /*tag*/, const named_property* /*named*/, std::uint32_t /*count*/) {}
  /// One element's bytes: fixed-size values whole, variable-size ones in pieces that add up to `size`.
  virtual void on_value(std::string_view /*bytes*/, std::uint32_t /*size*/) {}
  /// The current element (or the whole value) ends.
  virtual void on_value_end() {}
};

/// The incremental parser: feed() any split of the stream, in order.
class parser {
 public:
  explicit parser(handler& h) : h_(&h) {}
  /// Consumes `bytes`. false once the stream is malformed (error() says why, and every later feed fails).
  bool feed(std::string_view bytes);
  /// True between atoms: a stream may end here and nowhere else.
  bool at_boundary() const { return state_ == state::tag && have_ == 0; }
  const std::string& error() const { return error_; }
  std::uint64_t consumed() const { return consumed_; }

 private:
  enum class state { tag, named_head, named_lid, named_name, count, length, fixed, variable };
  bool fail(std::string why);
  bool fill(std::string_view& bytes, std::size_t want);  // gathers `want` bytes of a small field into buf_
  std::uint32_t buffered_u32() const;  // the first four bytes fill() gathered
  std::uint16_t element_type() const;  // the current tag's type, without the multi-valued bit
  void begin_values(const named_property* named);  // after the tag (and name): the count, or the one value
  void start_value();
  void end_element();

  handler* h_;
  state state_ = state::tag;
  std::array<char, 20> buf_{};
  std::size_t have_ = 0;
  std::uint32_t tag_ = 0;
  named_property named_;
  bool is_named_ = false;
  std::string name_utf16_;
  std::uint32_t elements_left_ = 0;
  std::uint32_t value_size_ = 0, value_left_ = 0;
  std::uint64_t consumed_ = 0;
  std::string error_;
};

}  // namespace exbridge::fx
