// "Expect: 100-continue" on fake-exchange as http.sys answers it, over real TLS 1.0: 100 Continue once a
// request is admitted on its header (after authentication), before any body byte; a refusal (401, 404.13,
// rpcproxy's 503) instead, after which a small body the client still sends is read and discarded so the
// connection carries the next request. The client here sends its body only after reading the interim answer,
// as impacket's RPC-over-HTTP client and .NET do.
#include <gtest/gtest.h>

#include "fake_exchange/rpc_proxy.hpp"
#include "tests/support/exchange_lab.hpp"

namespace exbridge {
namespace {

const std::string inbox_soap = test::get_inbox_soap();

std::string ews_head(const std::string& authorization, std::size_t length) {
  std::string r = "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail.contoso.example\r\nContent-Type: text/xml; charset=utf-8\r\n"
                  "Expect: 100-continue\r\n";
  if (!authorization.empty()) r += "Authorization: " + authorization + "\r\n";
  return r + "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

/// Reads one response header (an interim one included) and returns its status.
net::awaitable<unsigned> read_status_line(test::tls_stream& stream, beast::flat_buffer& buffer) {
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // the header alone: a final answer's body is read by the caller
  co_await http::async_read_header(stream, buffer, parser, net::use_awaitable);
  co_return parser.get().result_int();
}

TEST(ExpectContinue, AnAdmittedEwsRequestGets100BeforeItsBody) {
  test::exchange_lab lab;
  const auto [interim, final_status, body] = lab.io().run([&]() -> net::awaitable<std::tuple<unsigned, unsigned, std::string>> {
    auto stream = co_await lab.connect();
    beast::flat_buffer buffer;
    const std::string head = ews_head(test::demo_basic_auth(), inbox_soap.size());
    co_await test::send_text(stream, head);
    const unsigned first = co_await read_status_line(stream, buffer);  // nothing of the body has left yet
    co_await test::send_text(stream, inbox_soap);
    auto res = co_await test::read_response(stream, buffer);
    co_return std::make_tuple(first, res.result_int(), res.body());
  }());
  EXPECT_EQ(interim, 100u);
  EXPECT_EQ(final_status, 200u);
  EXPECT_NE(body.find("Inbox"), std::string::npos);
  EXPECT_EQ(lab.wait_for_request(1).operation, "GetFolder");
}

TEST(ExpectContinue, ARefusalComesInsteadOf100AndTheConnectionCarriesTheNextRequest) {
  test::exchange_lab lab;
  const auto [refused, interim, answered] = lab.io().run([&]() -> net::awaitable<std::tuple<unsigned, unsigned, unsigned>> {
    auto stream = co_await lab.connect();
    beast::flat_buffer buffer;
    const std::string anonymous = ews_head("", inbox_soap.size());
    co_await test::send_text(stream, anonymous);
    auto res = co_await test::read_response(stream, buffer);  // 401 straight away: no 100 came first
    // The client sends the body it had announced (as .NET does after its wait), then the next request on the
    // same connection: the body is discarded, the next request answered.
    const std::string next = ews_head(test::demo_basic_auth(), inbox_soap.size());
    const std::string both = inbox_soap + next;
    co_await test::send_text(stream, both);
    const unsigned second_interim = co_await read_status_line(stream, buffer);
    co_await test::send_text(stream, inbox_soap);
    auto ok = co_await test::read_response(stream, buffer);
    co_return std::make_tuple(res.result_int(), second_interim, ok.result_int());
  }());
  EXPECT_EQ(refused, 401u);
  EXPECT_EQ(interim, 100u);
  EXPECT_EQ(answered, 200u);
}

TEST(ExpectContinue, RpcChannelsGet100OnlyOnceAdmittedAndRpcproxysRefusalCloses) {
  test::exchange_lab lab;
  const auto [admitted, refused, closed] = lab.io().run([&]() -> net::awaitable<std::tuple<unsigned, unsigned, bool>> {
    // An IN channel with credentials: 100 Continue, then its body may flow.
    auto in = co_await lab.connect();
    beast::flat_buffer in_buffer;
    const std::string in_head = "RPC_IN_DATA /rpc/rpcproxy.dll?ex2007.contoso.example:6001 HTTP/1.1\r\n"
                                "Host: mail.contoso.example\r\nExpect: 100-continue\r\nAuthorization: " +
                                test::demo_basic_auth() + "\r\nContent-Length: 1073741824\r\n\r\n";
    co_await test::send_text(in, in_head);
    const unsigned first = co_await read_status_line(in, in_buffer);
    // A port outside ValidPorts: rpcproxy's 503 instead of 100, and the connection closes (a 1 GB body that
    // never came cannot be skipped).
    auto other = co_await lab.connect();
    beast::flat_buffer other_buffer;
    const std::string bad_port = "RPC_IN_DATA /rpc/rpcproxy.dll?ex2007.contoso.example:135 HTTP/1.1\r\n"
                                 "Host: mail.contoso.example\r\nExpect: 100-continue\r\nAuthorization: " +
                                 test::demo_basic_auth() + "\r\nContent-Length: 1073741824\r\n\r\n";
    co_await test::send_text(other, bad_port);
    auto res = co_await test::read_response(other, other_buffer);
    char byte;
    auto [ec, n] = co_await other.async_read_some(net::buffer(&byte, 1), use_tuple);
    co_return std::make_tuple(first, res.result_int(), ec == net::error::eof || ec == ssl::error::stream_truncated);
  }());
  EXPECT_EQ(admitted, 100u);
  EXPECT_EQ(refused, 503u);
  EXPECT_TRUE(closed);
}

TEST(ExpectContinue, ABodilessRequestNeedsNoGoAhead) {
  test::exchange_lab lab;
  const unsigned status = lab.io().run([&]() -> net::awaitable<unsigned> {
    auto stream = co_await lab.connect();
    beast::flat_buffer buffer;
    // An echo request of 0 bytes: answered at once with 200, no 100 before it.
    const std::string echo = "RPC_OUT_DATA /rpc/rpcproxy.dll?ex2007.contoso.example:6004 HTTP/1.1\r\n"
                             "Host: mail.contoso.example\r\nExpect: 100-continue\r\nAuthorization: " +
                             test::demo_basic_auth() + "\r\nContent-Length: 0\r\n\r\n";
    co_await test::send_text(stream, echo);
    co_return co_await read_status_line(stream, buffer);
  }());
  EXPECT_EQ(status, 200u);
}

}  // namespace
}  // namespace exbridge
