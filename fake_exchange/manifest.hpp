// The mailbox manifest: every generated item of every user with its id, size and the SHA-256 of its MIME,
// so that a migration client can prove it moved every byte (JSON, written by `fake-exchange --manifest`).
#pragma once

#include <boost/json/value.hpp>

#include <filesystem>

#include "fake_exchange/mailbox.hpp"
#include "fake_exchange/organisation.hpp"

namespace exbridge::fake_exchange {

/// {"seed":S,"users":[{"email":E,"folders":[{"id":"inbox","items":[{"id":I,"size":N,"sha256":H}]}]}]}
boost::json::value make_manifest(const organisation& org, const mailbox_spec& spec);

/// Writes the manifest as JSON. Throws config_error when the file cannot be written.
void write_manifest(const std::filesystem::path& file, const organisation& org, const mailbox_spec& spec);

}  // namespace exbridge::fake_exchange
