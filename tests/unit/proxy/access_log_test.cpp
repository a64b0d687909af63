// exbridge's access log: the HAProxy-like text line and the JSON line of one request record.
#include "proxy/session/access_log.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace exbridge::proxy {
namespace {

TEST(AccessLog, LineCarriesTimersBytesCodeAndTls) {
  request_record r;
  r.client = "203.0.113.7:50000";
  r.method = "POST";
  r.target = "/EWS/Exchange.asmx";
  r.status = 200;
  r.bytes_to_client = 1234;
  r.bytes_from_client = 567;
  r.t_handshake = 9, r.t_request = 1, r.t_connect = 2, r.t_upstream_tls = 3, r.t_response = 40, r.t_total = 41;
  r.auth_scheme = "NTLM";
  r.pinned = true;
  r.upstream_requests = 3;
  r.down_tls = "TLSv1.3 TLS_AES_256_GCM_SHA384";
  r.up_tls = "TLSv1 AES128-SHA";
  EXPECT_EQ(format_access_line(r),
            "203.0.113.7:50000 \"POST /EWS/Exchange.asmx\" 200 1234 567 9/1/2/3/40/41 -- completed auth=NTLM pinned=1 "
            "upreq=3 down_tls=\"TLSv1.3 TLS_AES_256_GCM_SHA384\" up_tls=\"TLSv1 AES128-SHA\" server=-");
  const auto json = boost::json::parse(format_access_json(r)).as_object();
  EXPECT_EQ(json.at("status").to_number<unsigned>(), 200u);
  EXPECT_EQ(json.at("termination").as_string(), "--");
  EXPECT_EQ(json.at("reason").as_string(), "completed");
  EXPECT_EQ(json.at("ms_downstream_tls").as_int64(), 9);
  EXPECT_EQ(json.at("ms_total").as_int64(), 41);
  EXPECT_EQ(json.at("pinned").as_bool(), true);
  EXPECT_EQ(json.at("upstream_tls").as_string(), "TLSv1 AES128-SHA");
}

TEST(AccessLog, AnOutlookAnywhereChannelSaysHowItWasPaired) {
  request_record r;
  r.client = "198.51.100.4:61000";
  r.method = "RPC_OUT_DATA";
  r.target = "/rpc/rpcproxy.dll?ex2007.contoso.example:6001";
  r.server = "default/cas2:443";
  r.pairing = "cookie-joined";
  r.vc = "10111213";
  EXPECT_NE(format_access_line(r).find(" server=default/cas2:443 pair=cookie-joined vc=10111213"), std::string::npos)
      << format_access_line(r);
  const auto json = boost::json::parse(format_access_json(r)).as_object();
  EXPECT_EQ(json.at("pairing").as_string(), "cookie-joined");
  EXPECT_EQ(json.at("vc").as_string(), "10111213");
  // Other requests carry no pairing in the text line.
  r.pairing = "-";
  EXPECT_EQ(format_access_line(r).find("pair="), std::string::npos);
}

TEST(AccessLog, JsonEscapesWhatAClientSends) {
  request_record r;
  r.target = "/\"quoted\"\\path";
  r.detail = "line\nbreak";
  const auto json = boost::json::parse(format_access_json(r)).as_object();
  EXPECT_EQ(json.at("target").as_string(), "/\"quoted\"\\path");
  EXPECT_EQ(json.at("detail").as_string(), "line\nbreak");
}

}  // namespace
}  // namespace exbridge::proxy
