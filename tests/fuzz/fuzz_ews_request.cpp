// libFuzzer target: fake-exchange's request handling (fake_exchange/router.cpp route_request) for
// Autodiscover (POX) and EWS (SOAP) bodies, with IIS-style authentication, as its server hands each parsed
// request over -- no sockets. The organisation is the demo one (the user documented in --help) with small
// synthetic mailboxes, so that every operation answers quickly.
//
// Input: one selector byte, then the request body.
//   bit 0: EWS (/EWS/Exchange.asmx) instead of Autodiscover (/autodiscover/autodiscover.xml)
//   bit 1: GET instead of POST
//   bit 2: no Authorization header (the 401 path)
//   bit 3: HTTP/1.0
//   bit 4: a Via header (a proxy in between)
// Invariants beyond "no crash, no UB": Autodiscover and EWS answers are well-formed XML (whatever the
// request echoed into them), a streamed body produces exactly the Content-Length it announced.
#include <cstddef>
#include <cstdint>
#include <string>

#include <pugixml.hpp>

#include "common/base64.hpp"
#include "fake_exchange/router.hpp"
#include "tests/fuzz/fuzz_streams.hpp"

namespace exbridge::fuzz {
namespace {

const fake_exchange::exchange_config& config() {
  static const fake_exchange::exchange_config c = [] {
    fake_exchange::exchange_config out;
    out.public_host = "mail.contoso.example";
    out.mailboxes.inbox_items = 12;
    out.mailboxes.small_min = 256;
    out.mailboxes.small_max = 4096;
    return out;
  }();
  return c;
}

const std::string& basic_credentials() {
  static const std::string value =
      "Basic " + base64_encode(std::string(fake_exchange::demo_email) + ":" + std::string(fake_exchange::demo_password));
  return value;
}

}  // namespace
}  // namespace exbridge::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exbridge;
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const bool ews = selector & 1;
  http::request<http::string_body> req{(selector & 2) ? http::verb::get : http::verb::post,
                                       ews ? "/EWS/Exchange.asmx" : "/autodiscover/autodiscover.xml",
                                       (selector & 8) ? 10u : 11u};
  req.set(http::field::host, "mail.contoso.example");
  req.set(http::field::content_type, "text/xml; charset=utf-8");
  if (!(selector & 4)) req.set(http::field::authorization, fuzz::basic_credentials());
  if (selector & 16) req.set(http::field::via, "1.1 exbridge");
  req.body().assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  req.prepare_payload();

  fake_exchange::connection_auth connection;
  auto routed = fake_exchange::route_request(req, fuzz::config(), connection);
  std::string body = routed.response.body();
  if (routed.stream) {
    const std::uint64_t announced = routed.stream->size();
    std::string streamed;
    char piece[16 * 1024];
    for (std::size_t n; (n = routed.stream->read(piece, sizeof piece)) > 0;) {
      streamed.append(piece, n);
      if (streamed.size() > announced) break;
    }
    if (streamed.size() != announced) fuzz::invariant_failed("a streamed body's size differs from its Content-Length");
    body = std::move(streamed);
  }
  const auto type = routed.response[http::field::content_type];
  if (type.starts_with("text/xml")) {
    pugi::xml_document doc;
    const auto parsed = doc.load_buffer(body.data(), body.size());
    if (!parsed) fuzz::invariant_failed("fake-exchange answered malformed XML:", parsed.description());
  }
  return 0;
}
