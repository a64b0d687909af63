// Base64 (RFC 4648) for HTTP Basic credentials, EWS ids and MimeContent: a table encoder, OpenSSL's decoder.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace exbridge {

std::string base64_encode(std::string_view data);
/// The encoded size of `n` bytes (with padding).
constexpr std::size_t base64_size(std::size_t n) { return 4 * ((n + 2) / 3); }
/// Encodes into `out`, which holds base64_size(data.size()) bytes; returns the count written.
std::size_t base64_encode_into(std::string_view data, char* out);
/// Returns nullopt for text that is not canonical base64 (bad characters or length).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace exbridge
