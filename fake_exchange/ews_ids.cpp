// ConvertId (Exchange 2007 SP1): converts the ids fake-exchange issues between the six IdFormatType
// formats of the 2007 SP1 schema. Only the id layouts are synthetic; which formats carry the mailbox
// follows Exchange:
//   EwsId        the ids every response carries (make_store_id: they name their mailbox)
//   EwsLegacyId  the 2007 RTM flavour of the same record (first byte 1 instead of 0)
//   EntryId      a MAPI PR_ENTRYID shape: 4 flag bytes 0, the mailbox's 16-byte GUID, a 2-byte type
//                (1 folder, 7 message), then what the entry names; it does not name the mailbox, so the
//                AlternateId's Mailbox attribute says which one, and its GUID must match
//   HexEntryId   the EntryId bytes in upper-case hex (the Availability service's calendar ids)
//   StoreId      the EntryId bytes behind a 2-byte length, base64
//   OwaId        base64 of 'F' and the EntryId bytes, URL-escaped as OWA 2007 puts ids in its URLs
// Ids that do not decode are a per-item ErrorInvalidIdMalformed with HTTP 200; like Exchange, ConvertId
// does not check that the item still exists.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>

#include "common/base64.hpp"
#include "common/sha256.hpp"
#include "common/xml.hpp"
#include "fake_exchange/ews_internal.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::array<std::string_view, 6> id_formats{"EwsLegacyId", "EwsId", "EntryId", "HexEntryId", "StoreId", "OwaId"};
constexpr std::size_t guid_offset = 4, type_offset = 20, entry_fixed = 22;

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const auto nibble = [](char ch) -> int {
      if (ch >= '0' && ch <= '9') return ch - '0';
      const int c = std::tolower(static_cast<unsigned char>(ch));
      return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

/// OWA puts ids in URLs: '+', '/' and '=' are percent-escaped (lower-case hex, as OWA 2007 writes them).
std::string url_escape(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    if (ch == '+') out += "%2b";
    else if (ch == '/') out += "%2f";
    else if (ch == '=') out += "%3d";
    else out += ch;
  }
  return out;
}

std::optional<std::string> url_unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const auto byte = from_hex(s.substr(i + 1, 2));
    if (!byte) return std::nullopt;
    out += *byte;
    i += 2;
  }
  return out;
}

/// The 16-byte GUID of `email`'s mailbox store (stable, derived from the address).
std::string mailbox_guid(std::string_view email) {
  sha256 h;
  h.update("fake-exchange mailbox guid\n" + ascii_lower(email));
  return *from_hex(h.hex_digest().substr(0, 32));
}

std::string entry_id(const store_ref& ref) {
  std::string raw(4, '\0');
  raw += mailbox_guid(ref.email);
  raw += ref.kind == 'F' ? '\x01' : '\x07';
  raw += '\0';
  raw += ref.folder;
  if (ref.kind == 'I') {
    raw += '\0';
    for (int b = 0; b < 4; ++b) raw += static_cast<char>((ref.index >> (8 * b)) & 0xff);
  }
  return raw;
}

std::optional<store_ref> parse_entry_id(std::string_view raw, std::string_view mailbox) {
  if (raw.size() <= entry_fixed || raw.substr(0, guid_offset) != std::string_view("\0\0\0\0", 4)) return std::nullopt;
  if (raw.substr(guid_offset, 16) != mailbox_guid(mailbox)) return std::nullopt;  // another mailbox's entry
  const char type = raw[type_offset];
  if (raw[type_offset + 1] != '\0' || (type != '\x01' && type != '\x07')) return std::nullopt;
  // The rest is the layout make_store_id uses after the kind byte: re-use its parser.
  const std::string email(mailbox);
  std::string ews("\0\0\0\0", 4);
  ews += static_cast<char>(email.size());
  ews += email;
  ews += type == '\x01' ? 'F' : 'I';
  ews += raw.substr(entry_fixed);
  return parse_store_id(base64_encode(ews));
}

std::optional<store_ref> decode(std::string_view format, std::string_view id, std::string_view mailbox) {
  if (format == "EwsId") return parse_store_id(id);
  if (format == "EwsLegacyId") {
    auto raw = base64_decode(id);
    if (!raw || raw->empty() || (*raw)[0] != '\x01') return std::nullopt;
    (*raw)[0] = '\0';
    return parse_store_id(base64_encode(*raw));
  }
  std::optional<std::string> raw;
  if (format == "EntryId") raw = base64_decode(id);
  if (format == "HexEntryId") raw = from_hex(id);
  if (format == "StoreId") {
    raw = base64_decode(id);
    if (raw && (raw->size() < 2 || static_cast<unsigned char>((*raw)[0]) + 256u * static_cast<unsigned char>((*raw)[1]) !=
                                       raw->size() - 2)) {
      return std::nullopt;
    }
    if (raw) raw = raw->substr(2);
  }
  if (format == "OwaId") {
    const auto unescaped = url_unescape(id);
    if (unescaped) raw = base64_decode(*unescaped);
    if (!raw || raw->empty() || (*raw)[0] != 'F') return std::nullopt;
    raw = raw->substr(1);
  }
  if (!raw) return std::nullopt;
  return parse_entry_id(*raw, mailbox);
}

std::string encode(std::string_view format, const store_ref& ref) {
  const std::string ews = make_store_id(ref.email, ref.kind, ref.folder, ref.index);
  if (format == "EwsId") return ews;
  if (format == "EwsLegacyId") {
    std::string raw = *base64_decode(ews);
    raw[0] = '\x01';
    return base64_encode(raw);
  }
  const std::string entry = entry_id(ref);
  if (format == "EntryId") return base64_encode(entry);
  if (format == "HexEntryId") return to_hex(entry);
  if (format == "StoreId") {
    std::string raw;
    raw += static_cast<char>(entry.size() & 0xff);
    raw += static_cast<char>((entry.size() >> 8) & 0xff);
    return base64_encode(raw + entry);
  }
  return url_escape(base64_encode("F" + entry));  // OwaId
}

bool known_format(std::string_view format) {
  return std::find(id_formats.begin(), id_formats.end(), format) != id_formats.end();
}

std::string format_fault_detail(std::string_view attribute, std::string_view value) {
  return "The '" + std::string(attribute) + "' attribute is invalid - The value '" + std::string(value) +
         "' is invalid according to its datatype '" + ns_types + ":IdFormatType' - The Enumeration constraint failed.";
}

}  // namespace

ews_result convert_id(const pugi::xml_node& op, const ews_context& c) {
  const std::string destination = op.attribute("DestinationFormat").value();
  const pugi::xml_node sources = child_local(op, "SourceIds");
  if (!known_format(destination)) return schema_fault("ConvertId", format_fault_detail("DestinationFormat", destination));
  if (!sources) {
    return schema_fault("ConvertId", "The element 'ConvertId' has incomplete content. List of possible elements "
                                     "expected: 'SourceIds' in namespace '" + std::string(ns_messages) + "'.");
  }
  std::string messages;
  for (const auto& source : sources.children()) {
    if (source.type() != pugi::node_element) continue;
    const std::string format = source.attribute("Format").value();
    if (!known_format(format)) return schema_fault("ConvertId", format_fault_detail("Format", format));
    const std::string mailbox = source.attribute("Mailbox").value();
    if (local_name(source) == "AlternateId" && !source.attribute("Mailbox")) {
      return schema_fault("ConvertId", "The required attribute 'Mailbox' is missing.");
    }
    // Public folder ids (AlternatePublicFolderId, AlternatePublicFolderItemId): the synthetic organisation
    // has no public folders, so none of them decodes.
    const auto ref = local_name(source) == "AlternateId" ? decode(format, source.attribute("Id").value(), mailbox)
                                                          : std::nullopt;
    if (!ref) {
      messages += error_message("ConvertId", "Error", "ErrorInvalidIdMalformed", "Id is malformed.");
      continue;
    }
    messages += success_message("ConvertId", "<m:AlternateId xsi:type=\"t:AlternateIdType\" Format=\"" + destination +
                                                 "\" Id=\"" + xml_escape(encode(destination, *ref)) + "\" Mailbox=\"" +
                                                 xml_escape(mailbox) + "\" />");
  }
  return response("ConvertId", messages, c.version);
}

}  // namespace exbridge::fake_exchange
