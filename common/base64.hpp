// Base64 (RFC 4648) for HTTP Basic credentials and EWS ids, on OpenSSL's EVP block coder.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace exbridge {

std::string base64_encode(std::string_view data);
/// Returns nullopt for text that is not canonical base64 (bad characters or length).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace exbridge
