// Unit tests for fake-exchange's protocol logic (no sockets): Autodiscover POX, EWS, IIS-style routing.
#include <gtest/gtest.h>
#include <pugixml.hpp>

#include "common/base64.hpp"
#include "common/ntlm.hpp"
#include "common/xml.hpp"
#include "fake_exchange/autodiscover.hpp"
#include "fake_exchange/ews.hpp"
#include "fake_exchange/router.hpp"

namespace exbridge::fake_exchange {
namespace {

std::string autodiscover_request(const std::string& email, const std::string& schema =
                                     "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a") {
  return "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">"
         "<Request><EMailAddress>" + email + "</EMailAddress><AcceptableResponseSchema>" + schema +
         "</AcceptableResponseSchema></Request></Autodiscover>";
}

std::string get_folder(const std::string& id, const std::string& header = "") {
  return "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
         "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" "
         "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><soap:Header>" + header +
         "</soap:Header><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>"
         "<m:FolderIds><t:DistinguishedFolderId Id=\"" + id + "\"/></m:FolderIds></m:GetFolder></soap:Body>"
         "</soap:Envelope>";
}

TEST(ServerVersion, MatchesTheKnownBuilds) {
  EXPECT_EQ(server_version_hex(*find_version_profile("RTM")), "720082AD");
  EXPECT_EQ(server_version_hex(*find_version_profile("SP1")), "720180F0");
  EXPECT_EQ(server_version_hex(*find_version_profile("SP2")), "720280B0");
  EXPECT_EQ(server_version_hex(*find_version_profile("SP3")), "72038053");
  EXPECT_EQ(server_version_hex(*find_version_profile("SP3-RU23")), "72038205");
  EXPECT_EQ(find_version_profile("SP4"), nullptr);
}

TEST(Autodiscover, AnswersWith2007ShapeAndPublicUrls) {
  const auto org = demo_organisation();
  const auto r = answer_autodiscover(autodiscover_request(std::string(demo_email)), org, default_version_profile(),
                                     "mail.contoso.example");
  ASSERT_EQ(r.error_code, 0);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(r.body.c_str()));
  const auto root = doc.document_element();
  EXPECT_STREQ(root.attribute("xmlns").value(), "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006");
  const auto response = child_local(root, "Response");
  EXPECT_STREQ(response.attribute("xmlns").value(),
               "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a");
  int protocols = 0;
  for (const auto& p : child_local(response, "Account").children("Protocol")) {
    ++protocols;
    const std::string type = child_local(p, "Type").text().get();
    if (type == "EXPR") {
      EXPECT_STREQ(child_local(p, "Server").text().get(), "mail.contoso.example");
      EXPECT_STREQ(child_local(p, "EwsUrl").text().get(), "https://mail.contoso.example/EWS/Exchange.asmx");
    }
    if (type == "EXCH") {
      EXPECT_STREQ(child_local(p, "ServerVersion").text().get(), "72038053");
    }
  }
  EXPECT_EQ(protocols, 3);  // EXCH, EXPR, WEB
}

TEST(Autodiscover, RedirectsAnswerWithActionAndTarget) {
  auto org = demo_organisation();
  org.redirects = {{"old@fabrikam.example", "", "alex.wilber@contoso.example", ""},
                   {"moved@contoso.example", "autodiscover.contoso.example", "",
                    "https://mail.contoso.example/autodiscover/autodiscover.xml"}};
  const auto account = [&](const std::string& email, const std::string& host) {
    const auto r = answer_autodiscover(autodiscover_request(email), org, default_version_profile(), "h", host);
    pugi::xml_document doc;
    doc.load_string(r.body.c_str());
    const auto a = child_local(child_local(doc.document_element(), "Response"), "Account");
    return std::string(child_local(a, "Action").text().get()) + " " + child_local(a, "RedirectAddr").text().get() +
           child_local(a, "RedirectUrl").text().get();
  };
  EXPECT_EQ(account("old@fabrikam.example", "autodiscover.fabrikam.example"), "redirectAddr alex.wilber@contoso.example");
  EXPECT_EQ(account("moved@contoso.example", "autodiscover.contoso.example:443"),
            "redirectUrl https://mail.contoso.example/autodiscover/autodiscover.xml");
  // Asked through another host, the address has no redirect and no mailbox: error 500.
  EXPECT_EQ(answer_autodiscover(autodiscover_request("moved@contoso.example"), org, default_version_profile(), "h",
                                "mail.contoso.example")
                .error_code,
            500);
  EXPECT_EQ(account(std::string(demo_email), "mail.contoso.example"), "settings ");
}

TEST(Autodiscover, ErrorsComeAsDocuments) {
  const auto org = demo_organisation();
  EXPECT_EQ(answer_autodiscover(autodiscover_request("nobody@contoso.example"), org, default_version_profile(), "h")
                .error_code,
            500);
  EXPECT_EQ(answer_autodiscover("<not xml", org, default_version_profile(), "h").error_code, 600);
  EXPECT_EQ(answer_autodiscover(autodiscover_request(std::string(demo_email), "urn:other"), org,
                                default_version_profile(), "h")
                .error_code,
            601);
}

TEST(Ews, GetFolderInboxCarriesServerVersionInfoWithoutVersionAttribute) {
  const auto org = demo_organisation();
  const auto r = answer_ews(get_folder("inbox"), org.users.front(), default_version_profile(), mailbox_spec{}, org);
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.operation, "GetFolder");
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(r.body.c_str()));
  const auto svi = descendant_local(doc, "ServerVersionInfo");
  EXPECT_STREQ(svi.attribute("MajorVersion").value(), "8");
  EXPECT_STREQ(svi.attribute("MinorVersion").value(), "3");
  EXPECT_FALSE(svi.attribute("Version"));
  EXPECT_STREQ(descendant_local(doc, "GetFolderResponseMessage").attribute("ResponseClass").value(), "Success");
  EXPECT_STREQ(descendant_local(doc, "DisplayName").text().get(), "Inbox");
}

TEST(Ews, RequestServerVersionOtherThan2007IsAFault) {
  const auto org = demo_organisation();
  const auto ok = answer_ews(get_folder("inbox", "<t:RequestServerVersion Version=\"Exchange2007_SP1\"/>"),
                             org.users.front(), default_version_profile(), mailbox_spec{}, org);
  EXPECT_EQ(ok.status, 200u);
  const auto bad = answer_ews(get_folder("inbox", "<t:RequestServerVersion Version=\"Exchange2010_SP1\"/>"),
                              org.users.front(), default_version_profile(), mailbox_spec{}, org);
  EXPECT_EQ(bad.status, 500u);
  EXPECT_NE(bad.body.find("ErrorInvalidServerVersion"), std::string::npos);
}

TEST(Ews, FoldersUnknownTo2007AndMalformedXmlFailSchemaValidation) {
  const auto org = demo_organisation();
  const auto archive = answer_ews(get_folder("archiveroot"), org.users.front(), default_version_profile(), mailbox_spec{}, org);
  EXPECT_EQ(archive.status, 500u);
  EXPECT_NE(archive.body.find("ErrorSchemaValidation"), std::string::npos);
  const auto broken = answer_ews("<soap:Envelope", org.users.front(), default_version_profile(), mailbox_spec{}, org);
  EXPECT_EQ(broken.status, 500u);
  EXPECT_NE(broken.body.find("ErrorSchemaValidation"), std::string::npos);
}

http::request<http::string_body> post(const std::string& target, const std::string& body, const std::string& auth) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, "mail.contoso.example");
  if (!auth.empty()) req.set(http::field::authorization, auth);
  req.body() = body;
  req.prepare_payload();
  return req;
}

TEST(Router, RequiresBasicAuthAndNamesTheRealm) {
  const exchange_config config;
  connection_auth conn;
  const auto r = route_request(post("/EWS/Exchange.asmx", get_folder("inbox"), ""), config, conn);
  EXPECT_EQ(r.response.result(), http::status::unauthorized);
  std::vector<std::string> offered;
  const auto [first, last] = r.response.equal_range(http::field::www_authenticate);
  for (auto it = first; it != last; ++it) offered.emplace_back(it->value());
  // IIS's order, one header per provider.
  EXPECT_EQ(offered, (std::vector<std::string>{"Negotiate", "NTLM", "Basic realm=\"mail.contoso.example\""}));
  const auto wrong = route_request(
      post("/EWS/Exchange.asmx", get_folder("inbox"), "Basic " + base64_encode(std::string(demo_email) + ":nope")), config, conn);
  EXPECT_EQ(wrong.response.result(), http::status::unauthorized);
}

TEST(Router, AcceptsEmailUpnAndDomainBackslashLogons) {
  const exchange_config config;
  connection_auth conn;
  for (const std::string& logon : {std::string(demo_email), std::string("CONTOSO\\alex.wilber"), std::string("alex.wilber")}) {
    const auto r = route_request(post("/EWS/Exchange.asmx", get_folder("inbox"),
                                      "Basic " + base64_encode(logon + ":" + std::string(demo_password))), config, conn);
    EXPECT_EQ(r.response.result(), http::status::ok) << logon;
    EXPECT_EQ(r.user, demo_email);
  }
}

TEST(Router, AdmissionDecidesOnTheHeaderAloneInIisOrder) {
  const exchange_config config;
  connection_auth conn;
  const std::string basic = "Basic " + base64_encode(std::string(demo_email) + ":" + std::string(demo_password));
  // The virtual directory first (no credentials asked for a path that is not there), then authentication,
  // then the method.
  EXPECT_EQ(admit_request(post("/nowhere", "", ""), config, conn).refusal->result(), http::status::not_found);
  const auto anonymous = admit_request(post("/EWS/Exchange.asmx", "", ""), config, conn);
  ASSERT_TRUE(anonymous.refusal);
  EXPECT_EQ(anonymous.refusal->result(), http::status::unauthorized);
  http::request<http::string_body> get{http::verb::get, "/EWS/Exchange.asmx", 11};
  get.set(http::field::authorization, basic);
  const auto wrong_method = admit_request(get, config, conn);
  ASSERT_TRUE(wrong_method.refusal);
  EXPECT_EQ(wrong_method.refusal->result(), http::status::method_not_allowed);
  EXPECT_EQ(wrong_method.email(), demo_email);
  const auto admitted = admit_request(post("/EWS/Exchange.asmx", "", basic), config, conn);
  EXPECT_FALSE(admitted.refusal);
  ASSERT_NE(admitted.who, nullptr);
  EXPECT_EQ(admitted.who->email, demo_email);
  // The body is answered as the admitted user, without authenticating again.
  EXPECT_EQ(answer_request(post("/EWS/Exchange.asmx", get_folder("inbox"), ""), config, *admitted.who).response.result(),
            http::status::ok);
}

TEST(Router, OnlyAnHttp11RequestWithABodyWaitsFor100Continue) {
  const auto with = [](unsigned version, const char* expect) {
    http::request<http::empty_body> r{http::verb::post, "/EWS/Exchange.asmx", version};
    r.set(http::field::expect, expect);
    return r;
  };
  EXPECT_TRUE(expects_continue(with(11, "100-continue"), 10, false));
  EXPECT_TRUE(expects_continue(with(11, "100-Continue"), 10, false));  // a token: any case (http.sys on 2003 SP2 got this wrong)
  EXPECT_TRUE(expects_continue(with(11, "100-continue"), std::nullopt, true));  // chunked
  EXPECT_FALSE(expects_continue(with(11, "100-continue"), 0, false));   // nothing to hold back
  EXPECT_FALSE(expects_continue(with(10, "100-continue"), 10, false));  // HTTP/1.0 has no interim answers
  EXPECT_FALSE(expects_continue(with(11, "something-else"), 10, false));
}

/// Runs the NTLM handshake against the router the way a client on one connection would.
routed_response ntlm_request(const exchange_config& config, connection_auth& conn, const std::string& user,
                             const std::string& domain, const std::string& password, bool via = false) {
  auto first = post("/EWS/Exchange.asmx", get_folder("inbox"), http_token("NTLM", make_negotiate()));
  if (via) first.set(http::field::via, "1.1 proxy");
  auto challenge = route_request(first, config, conn);
  EXPECT_EQ(challenge.response.result(), http::status::unauthorized);
  const auto type2 = decode_http_token(challenge.response[http::field::www_authenticate]);
  EXPECT_TRUE(type2);
  const auto type3 = make_authenticate(type2.value_or(""), user, domain, password, "WS01", ntlm_random_challenge(),
                                       ntlm_filetime_now());
  auto second = post("/EWS/Exchange.asmx", get_folder("inbox"), http_token("NTLM", type3));
  if (via) second.set(http::field::via, "1.1 proxy");
  return route_request(second, config, conn);
}

TEST(RouterNtlm, HandshakeAuthenticatesTheConnection) {
  const exchange_config config;
  connection_auth conn;
  const auto r = ntlm_request(config, conn, "alex.wilber", "CONTOSO", std::string(demo_password));
  EXPECT_EQ(r.response.result(), http::status::ok);
  EXPECT_EQ(r.user, demo_email);
  // Connection-bound: the next request on the same connection needs no Authorization header...
  const auto again = route_request(post("/EWS/Exchange.asmx", get_folder("inbox"), ""), config, conn);
  EXPECT_EQ(again.response.result(), http::status::ok);
  // ...but another connection does.
  connection_auth other;
  EXPECT_EQ(route_request(post("/EWS/Exchange.asmx", get_folder("inbox"), ""), config, other).response.result(),
            http::status::unauthorized);
}

TEST(RouterNtlm, WrongPasswordAndStrayType3AreRefused) {
  const exchange_config config;
  connection_auth conn;
  EXPECT_EQ(ntlm_request(config, conn, "alex.wilber", "CONTOSO", "wrong").response.result(), http::status::unauthorized);
  EXPECT_EQ(conn.ntlm_user, nullptr);
  // A Type 3 arriving on another connection than its challenge -- what a proxy that closes or shares
  // server connections (HAProxy's http-server-close) does -- is refused.
  connection_auth first_connection, second_connection;
  const auto challenge = route_request(post("/EWS/Exchange.asmx", get_folder("inbox"), http_token("NTLM", make_negotiate())),
                                       config, first_connection);
  const auto type2 = decode_http_token(challenge.response[http::field::www_authenticate]);
  ASSERT_TRUE(type2);
  const auto type3 = make_authenticate(*type2, "alex.wilber", "CONTOSO", std::string(demo_password), "WS01",
                                       ntlm_random_challenge(), ntlm_filetime_now());
  EXPECT_EQ(route_request(post("/EWS/Exchange.asmx", get_folder("inbox"), http_token("NTLM", type3)), config,
                          second_connection)
                .response.result(),
            http::status::unauthorized);
  // Garbage tokens are a 401, not a crash.
  EXPECT_EQ(route_request(post("/EWS/Exchange.asmx", get_folder("inbox"), "NTLM " + base64_encode("NTLMSSP")), config,
                          second_connection)
                .response.result(),
            http::status::unauthorized);
}

TEST(RouterNtlm, RequestsCarryingViaAreReChallengedEveryTime) {
  const exchange_config config;
  connection_auth conn;
  const auto r = ntlm_request(config, conn, std::string(demo_email), "", std::string(demo_password), true);
  EXPECT_EQ(r.response.result(), http::status::ok);
  auto next = post("/EWS/Exchange.asmx", get_folder("inbox"), "");
  next.set(http::field::via, "1.1 proxy");
  EXPECT_EQ(route_request(next, config, conn).response.result(), http::status::unauthorized);
}

TEST(Router, SoapAutodiscoverDoesNotExistOn2007) {
  const exchange_config config;
  connection_auth conn;
  const auto r = route_request(post("/autodiscover/autodiscover.svc", "", ""), config, conn);
  EXPECT_EQ(r.response.result(), http::status::not_found);
}

TEST(Router, AutodiscoverUrlsFollowTheHostHeaderUnlessConfigured) {
  exchange_config config;
  connection_auth conn;
  const std::string auth = "Basic " + base64_encode(std::string(demo_email) + ":" + std::string(demo_password));
  auto r = route_request(post("/autodiscover/autodiscover.xml", autodiscover_request(std::string(demo_email)), auth), config, conn);
  EXPECT_NE(r.response.body().find("https://mail.contoso.example/EWS/Exchange.asmx"), std::string::npos);
  EXPECT_FALSE(r.response.find("X-SOAP-Enabled") != r.response.end());
  config.public_host = "bridge.example.net";
  r = route_request(post("/autodiscover/autodiscover.xml", autodiscover_request(std::string(demo_email)), auth), config, conn);
  EXPECT_NE(r.response.body().find("https://bridge.example.net/EWS/Exchange.asmx"), std::string::npos);
}

TEST(Organisation, UserSpecParsing) {
  const auto u = parse_user_spec("dana@contoso.example:S3cret:Dana Park");
  EXPECT_EQ(u.email, "dana@contoso.example");
  EXPECT_EQ(u.password, "S3cret");
  EXPECT_EQ(u.display_name, "Dana Park");
  EXPECT_THROW(parse_user_spec("no-password"), std::exception);
}

}  // namespace
}  // namespace exbridge::fake_exchange
