// Full-duplex relaying over real TLS on loopback: an answer that comes before the request body ends, a
// keep-alive answer before the body, and Expect: 100-continue relayed before the body.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <sys/socket.h>

#include <fstream>
#include <sstream>

#include "common/errors.hpp"
#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy {
namespace {

using namespace std::chrono_literals;
using test::BridgeTest;
using test::client;

/// The bridge between a test client and a scripted upstream that answers early.
class FullDuplexTest : public BridgeTest {};

TEST_F(FullDuplexTest, AnEarlyAnswerReachesTheClientWhileItsBodyIsStillComing) {
  start_bridge(options_for_upstream());
  const std::string reply =
      send_and_wait_close("POST /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + std::string(1000, 'a'));
  EXPECT_EQ(reply.rfind("HTTP/1.1 413 ", 0), 0u) << reply;
  EXPECT_EQ(ended(termination::normal), 1);
  EXPECT_EQ(stat(counter::upstream_rq_failed), 0);
}

// A server may answer before it has read the body and still keep the connection (HTTP/1.1 lets it; it
// reads the rest afterwards). The client was told keep-alive, so the bridge must go on relaying the body
// and keep both connections: closing them would fail the client's next request on a connection it was
// promised ("the underlying connection was closed" in .NET). It used to, whenever the answer finished
// before the upload half of the relay noticed its own end -- a race that broke Autodiscover under load.
TEST_F(FullDuplexTest, AKeepAliveAnswerBeforeTheBodyKeepsTheConnection) {
  start_bridge(options_for_upstream());
  const std::string reply = io_.run([&]() -> net::awaitable<std::string> {
    client c(io_.context());
    co_await c.connect(port());
    co_await c.send("POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n");
    std::string early;
    while (early.find("\r\n\r\nearly") == std::string::npos) {
      std::string more = co_await c.read_some_text();
      if (more.empty()) co_return "closed after: " + early;
      early += more;
    }
    std::string body;
    for (std::uint64_t i = 0; i < 3000; ++i) body += test::pattern_byte(i);
    co_await c.send(body);
    co_await c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    co_return co_await c.read_until_close();
  }(), 5s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("bytes=0 ok"), std::string::npos) << reply;
  EXPECT_EQ(ended(termination::normal), 2);
  EXPECT_EQ(stat(counter::upstream_cx_total), 1);  // one upstream connection carried both requests
}

// .NET clients (Exchange Online's among them) send "Expect: 100-continue" and wait for the interim
// answer before sending the body.
TEST_F(FullDuplexTest, ExpectContinueIsRelayedBeforeTheBody) {
  bridge_options o = options_for_upstream();
  start_bridge(o);
  const std::string reply = io_.run([&]() -> net::awaitable<std::string> {
    client c(io_.context());
    co_await c.connect(port());
    std::string head =
        "POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
    co_await c.send(head);
    std::string interim = co_await c.read_some_text();
    if (interim.rfind("HTTP/1.1 100 ", 0) != 0) co_return "no interim response: " + interim;
    std::string body;
    for (std::uint64_t i = 0; i < 3000; ++i) body += test::pattern_byte(i);
    co_await c.send(body);
    co_return co_await c.read_until_close();
  }(), 5s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("bytes=3000 ok"), std::string::npos) << reply;
}

}  // namespace
}  // namespace exbridge::proxy
