// UTF-8 <-> UTF-16LE, the text encoding of Windows protocols: NTLM's names, MAPI's Unicode properties
// (PtypString) in ROP buffers and FastTransfer streams.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exbridge {

/// Decodes UTF-8 to code points; malformed sequences become U+FFFD.
std::vector<std::uint32_t> code_points(std::string_view utf8);
void append_utf8(std::string& out, std::uint32_t code_point);
/// One code point as UTF-16LE (a surrogate pair above U+FFFF).
void append_utf16le(std::string& out, std::uint32_t code_point);
/// UTF-8 to UTF-16LE (malformed input becomes U+FFFD).
std::string utf16le(std::string_view utf8);
/// UTF-16LE to UTF-8; nullopt for an odd length or an unpaired surrogate.
std::optional<std::string> from_utf16le(std::string_view bytes);

}  // namespace exbridge
