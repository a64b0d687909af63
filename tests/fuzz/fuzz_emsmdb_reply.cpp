// libFuzzer target: what rehearse's Outlook Anywhere migration client reads from the server side of the proxy
// (rehearse/clients/emsmdb_codec.cpp, fx_item_hasher.cpp) -- an RPC server or a proxy in between controls every
// byte. The first input byte picks the reader:
//   0: an EcDoRpcExt2 reply stub, then its ROP responses read as a migration reads them (the second byte picks
//      the sequence: logon; folder walk; contents listing; message copy);
//   1: an EcDoConnectEx reply stub;
//   2: a FastTransfer stream fed to the item hasher whole and in pieces of the size the second byte picks.
//
// Invariants beyond "no crash, no UB": every refusal has a reason; a ROP reader that failed returns nothing
// more; the hasher's verdict and digest do not depend on where the stream is cut.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rehearse/clients/emsmdb_codec.hpp"
#include "rehearse/clients/fx_item_hasher.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace {

using namespace exbridge;
using namespace exbridge::rehearse;

void read_rops(std::uint8_t sequence, const std::string& rops) {
  emsmdb::rop_reader r(rops);
  std::uint32_t ec = 0;
  const std::vector<std::uint32_t> columns{mapi::tag::folder_id, mapi::tag::display_name, mapi::tag::content_count};
  switch (sequence % 4) {
    case 0: (void)r.logon(ec); break;
    case 1:
      if (r.open_folder(ec) && r.table(ec) && r.set_columns(ec)) (void)r.query_rows(columns, ec);
      break;
    case 2:
      while (r.ok() && !r.at_end()) (void)r.query_rows({mapi::tag::mid}, ec);
      break;
    default:
      if (r.open_message(ec) && r.copy_to(ec)) {
        while (r.ok() && !r.at_end()) (void)r.get_buffer(ec);
      }
  }
  if (!r.ok()) {
    if (r.error().empty()) fuzz::invariant_failed("a ROP reader failed without a reason");
    std::uint32_t later = 0;
    if (r.open_folder(later) || r.logon(later) || r.get_buffer(later)) fuzz::invariant_failed("a failed ROP reader read on");
  }
}

/// The hasher's verdict and digest for `stream` fed in pieces of `piece` bytes.
std::pair<bool, std::string> hash(std::string_view stream, std::size_t piece) {
  fx_item_hasher h;
  bool ok = true;
  for (std::size_t at = 0; at < stream.size() && ok; at += piece) ok = h.feed(stream.substr(at, piece));
  ok = ok && h.finish();
  if (!ok && h.error().empty()) fuzz::invariant_failed("the hasher refused a stream without a reason");
  return {ok, ok ? h.sha256_hex() + "/" + std::to_string(h.size()) : std::string()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 2), size - 2);
  switch (data[0] % 3) {
    case 0: {
      std::string why;
      if (const auto reply = emsmdb::read_rpc_ext2(rest, &why)) {
        read_rops(data[1], reply->rops);
      } else if (why.empty()) {
        fuzz::invariant_failed("an EcDoRpcExt2 reply refused without a reason");
      }
      break;
    }
    case 1: (void)emsmdb::read_connect_ex(rest); break;
    default: {
      const auto whole = hash(rest, rest.size() + 1);
      const auto pieces = hash(rest, 1 + data[1] % 97);
      if (whole != pieces) fuzz::invariant_failed("the hasher's verdict depends on where the stream is cut");
    }
  }
  return 0;
}
