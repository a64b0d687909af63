// Autodiscover POX implementation.
#include "fake_exchange/autodiscover.hpp"

#include <pugixml.hpp>

#include <array>
#include <chrono>
#include <cstdio>

#include "common/xml.hpp"

namespace exbridge::fake_exchange {
namespace {

constexpr std::array<version_profile, 5> profiles{{
    {"RTM", 8, 0, 685, 25},
    {"SP1", 8, 1, 240, 6},
    {"SP2", 8, 2, 176, 2},
    {"SP3", 8, 3, 83, 6},
    {"SP3-RU23", 8, 3, 517, 0},
}};

constexpr const char* response_schema_2006a =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

std::string error_document(int code, const std::string& message) {
  // Time is the time of day and Id a hash of the CAS name, as MS-OXDSCLI describes.
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ms_of_day = std::chrono::duration_cast<std::chrono::milliseconds>(now).count() % 86'400'000;
  char time[32];
  std::snprintf(time, sizeof time, "%02lld:%02lld:%02lld.%03lld0000", static_cast<long long>(ms_of_day / 3'600'000),
                static_cast<long long>(ms_of_day / 60'000 % 60), static_cast<long long>(ms_of_day / 1000 % 60),
                static_cast<long long>(ms_of_day % 1000));
  return std::string("<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
                     "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\r\n"
                     "  <Response>\r\n"
                     "    <Error Time=\"") +
         time + "\" Id=\"2422600485\">\r\n      <ErrorCode>" + std::to_string(code) +
         "</ErrorCode>\r\n      <Message>" + xml_escape(message) +
         "</Message>\r\n      <DebugData />\r\n    </Error>\r\n  </Response>\r\n</Autodiscover>\r\n";
}

/// Action redirectAddr / redirectUrl: the whole answer is the Account with its Action and target.
std::string redirect_document(const autodiscover_redirect& r) {
  const bool to_address = !r.address.empty();
  std::string x = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
                  "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\r\n"
                  "  <Response xmlns=\"";
  x += response_schema_2006a;
  x += "\">\r\n    <Account>\r\n      <AccountType>email</AccountType>\r\n";
  x += to_address ? "      <Action>redirectAddr</Action>\r\n      <RedirectAddr>" + xml_escape(r.address) + "</RedirectAddr>\r\n"
                  : "      <Action>redirectUrl</Action>\r\n      <RedirectUrl>" + xml_escape(r.url) + "</RedirectUrl>\r\n";
  x += "    </Account>\r\n  </Response>\r\n</Autodiscover>\r\n";
  return x;
}

}  // namespace

const version_profile* find_version_profile(std::string_view name) {
  for (const auto& p : profiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const version_profile& default_version_profile() { return profiles[3]; }

std::string server_version_hex(const version_profile& v) {
  // 4 bits structure version (0111), 6 bits major, 6 bits minor, 1 flag bit (set), 15 bits build.
  const unsigned value = (0x7u << 28) | (static_cast<unsigned>(v.major) << 22) | (static_cast<unsigned>(v.minor) << 16) |
                         (1u << 15) | static_cast<unsigned>(v.build);
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08X", value);
  return buf;
}

autodiscover_result answer_autodiscover(std::string_view request_body, const organisation& org,
                                        const version_profile& version, const std::string& public_host,
                                        std::string_view host) {
  pugi::xml_document doc;
  if (!doc.load_buffer(request_body.data(), request_body.size())) {
    return {error_document(600, "Invalid Request"), 600};
  }
  const pugi::xml_node request = child_local(doc.document_element(), "Request");
  const std::string email = child_local(request, "EMailAddress").text().get();
  const std::string schema = child_local(request, "AcceptableResponseSchema").text().get();
  if (!request || email.empty()) return {error_document(600, "Invalid Request"), 600};
  if (schema != response_schema_2006a) {
    return {error_document(601, "The requested schema version is not supported"), 601};
  }
  if (const auto* redirect = org.find_redirect(email, host)) return {redirect_document(*redirect), 0};
  const user* u = org.find_email(email);
  if (u == nullptr) return {error_document(500, "The email address can't be found."), 500};

  const std::string base = "https://" + public_host;
  const std::string ews = base + "/EWS/Exchange.asmx";
  const std::string oab = base + "/OAB/6a7e5c1f-3d1a-4f43-9c55-0a1b2c3d4e5f/";
  const std::string admin_group = "/o=" + org.name + "/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)";
  std::string x;
  x.reserve(2048);
  x += "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n";
  x += "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\r\n";
  x += "  <Response xmlns=\"" + std::string(response_schema_2006a) + "\">\r\n";
  x += "    <User>\r\n      <DisplayName>" + xml_escape(u->display_name) + "</DisplayName>\r\n";
  x += "      <LegacyDN>" + xml_escape(org.legacy_dn(*u)) + "</LegacyDN>\r\n";
  x += "      <DeploymentId>9c1bd5d4-2f3a-4b8e-8d7f-" + std::string("0a1b2c3d4e5f") + "</DeploymentId>\r\n";
  x += "    </User>\r\n    <Account>\r\n      <AccountType>email</AccountType>\r\n      <Action>settings</Action>\r\n";
  x += "      <Protocol>\r\n        <Type>EXCH</Type>\r\n        <Server>" + xml_escape(org.server_fqdn()) + "</Server>\r\n";
  x += "        <ServerDN>" + xml_escape(admin_group + "/cn=Configuration/cn=Servers/cn=" + org.server_name) +
       "</ServerDN>\r\n";
  x += "        <ServerVersion>" + server_version_hex(version) + "</ServerVersion>\r\n";
  x += "        <MdbDN>" +
       xml_escape(admin_group + "/cn=Configuration/cn=Servers/cn=" + org.server_name +
                  "/cn=Microsoft Private MDB") +
       "</MdbDN>\r\n";
  x += "        <ASUrl>" + xml_escape(ews) + "</ASUrl>\r\n        <EwsUrl>" + xml_escape(ews) + "</EwsUrl>\r\n";
  x += "        <OOFUrl>" + xml_escape(ews) + "</OOFUrl>\r\n        <OABUrl>" + xml_escape(oab) + "</OABUrl>\r\n";
  x += "      </Protocol>\r\n";
  x += "      <Protocol>\r\n        <Type>EXPR</Type>\r\n        <Server>" + xml_escape(public_host) + "</Server>\r\n";
  x += "        <SSL>On</SSL>\r\n        <AuthPackage>Basic</AuthPackage>\r\n";
  x += "        <ASUrl>" + xml_escape(ews) + "</ASUrl>\r\n        <EwsUrl>" + xml_escape(ews) + "</EwsUrl>\r\n";
  x += "        <OOFUrl>" + xml_escape(ews) + "</OOFUrl>\r\n        <OABUrl>" + xml_escape(oab) + "</OABUrl>\r\n";
  x += "      </Protocol>\r\n";
  x += "      <Protocol>\r\n        <Type>WEB</Type>\r\n        <External>\r\n";
  x += "          <OWAUrl AuthenticationMethod=\"Basic, Fba\">" + xml_escape(base + "/owa/") + "</OWAUrl>\r\n";
  x += "          <Protocol>\r\n            <Type>EXPR</Type>\r\n            <ASUrl>" + xml_escape(ews) +
       "</ASUrl>\r\n          </Protocol>\r\n";
  x += "        </External>\r\n      </Protocol>\r\n";
  x += "    </Account>\r\n  </Response>\r\n</Autodiscover>\r\n";
  return {std::move(x), 0};
}

}  // namespace exbridge::fake_exchange
