// Exchange Online's migration client: Autodiscover (candidate URLs, redirects, Basic or NTLM), then an EWS read,
// an EWS migration, or the hand-over to the Outlook Anywhere migration (oa_migration.hpp); several mailboxes at once.
#include "rehearse/clients/exo_client.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/json.hpp>
#include <pugixml.hpp>

#include <fstream>
#include <map>
#include <set>
#include <optional>
#include <variant>

#include "common/base64.hpp"
#include "common/cli.hpp"
#include "common/errors.hpp"
#include "common/xml.hpp"
#include "rehearse/clients/mailbox_manifest.hpp"
#include "rehearse/clients/mime_extractor.hpp"
#include "rehearse/clients/oa_migration.hpp"
#include "rehearse/runner/progress.hpp"

namespace exbridge::rehearse {
namespace {

http::request<http::string_body> soap_post(const std::string& target, std::string body, const std::string& auth) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::content_type, "text/xml; charset=utf-8");
  if (!auth.empty()) req.set(http::field::authorization, auth);
  req.body() = std::move(body);
  return req;
}

std::string autodiscover_request(const std::string& email) {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
         "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">"
         "<Request><EMailAddress>" + xml_escape(email) + "</EMailAddress>"
         "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
         "</AcceptableResponseSchema></Request></Autodiscover>";
}

constexpr const char* get_inbox_request =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" "
    "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\">"
    "<soap:Header><t:RequestServerVersion Version=\"Exchange2007_SP1\" /></soap:Header>"
    "<soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>"
    "<m:FolderIds><t:DistinguishedFolderId Id=\"inbox\" /></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>";

std::string ews_envelope(const std::string& body) {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
         "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
         "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" "
         "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\">"
         "<soap:Header><t:RequestServerVersion Version=\"Exchange2007_SP1\" /></soap:Header><soap:Body>" +
         body + "</soap:Body></soap:Envelope>";
}

std::string find_item_request(const std::string& folder, unsigned page, unsigned offset) {
  return ews_envelope("<m:FindItem Traversal=\"Shallow\"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
                      "<t:AdditionalProperties><t:FieldURI FieldURI=\"item:Size\" /></t:AdditionalProperties>"
                      "</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned=\"" + std::to_string(page) +
                      "\" Offset=\"" + std::to_string(offset) + "\" BasePoint=\"Beginning\" />"
                      "<m:ParentFolderIds><t:DistinguishedFolderId Id=\"" + folder +
                      "\" /></m:ParentFolderIds></m:FindItem>");
}

/// SyncFolderItems (2007 schema order: ItemShape, SyncFolderId, SyncState, MaxChangesReturned); an empty
/// state asks for every item as a Create.
std::string sync_folder_items_request(const std::string& folder, unsigned max_changes, const std::string& state) {
  return ews_envelope("<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
                      "<m:SyncFolderId><t:DistinguishedFolderId Id=\"" + folder + "\" /></m:SyncFolderId>" +
                      (state.empty() ? std::string() : "<m:SyncState>" + xml_escape(state) + "</m:SyncState>") +
                      "<m:MaxChangesReturned>" + std::to_string(max_changes) + "</m:MaxChangesReturned></m:SyncFolderItems>");
}

std::string get_item_request(const std::vector<std::string>& ids) {
  std::string list;
  for (const auto& id : ids) list += "<t:ItemId Id=\"" + xml_escape(id) + "\" />";
  return ews_envelope("<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
                      "<t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds>" + list +
                      "</m:ItemIds></m:GetItem>");
}

struct discovery {
  std::string ews_url;
  std::string server_version;
  outlook_anywhere_endpoint outlook_anywhere;  ///< EXPR, EXCH and the user's legacy DN
};

/// Action redirectAddr (ask again about another address) or redirectUrl (ask again at another URL).
struct ad_redirect {
  bool to_address = false;
  std::string target;
};

std::variant<discovery, ad_redirect, failure> parse_autodiscover(const std::string& xml) {
  pugi::xml_document doc;
  if (!doc.load_string(xml.c_str())) return failure{"bad-response", "Autodiscover answered with a document that is not XML"};
  const auto response = child_local(doc.document_element(), "Response");
  if (const auto error = child_local(response, "Error")) {
    return failure{"bad-response", std::string("Autodiscover error ") + child_local(error, "ErrorCode").text().get() +
                                       ": " + child_local(error, "Message").text().get()};
  }
  const auto account = child_local(response, "Account");
  const std::string action = child_local(account, "Action").text().get();
  if (action == "redirectAddr" || action == "redirectUrl") {
    const bool to_address = action == "redirectAddr";
    const std::string target = child_local(account, to_address ? "RedirectAddr" : "RedirectUrl").text().get();
    if (target.empty()) return failure{"bad-response", "Autodiscover answered Action " + action + " without a target"};
    return ad_redirect{to_address, target};
  }
  std::optional<discovery> exch, expr;
  for (const auto& protocol : account.children()) {
    if (local_name(protocol) != "Protocol") continue;
    const std::string type = child_local(protocol, "Type").text().get();
    discovery d{child_local(protocol, "EwsUrl").text().get(), child_local(protocol, "ServerVersion").text().get()};
    if (d.ews_url.empty()) continue;
    if (type == "EXPR") expr = d;
    if (type == "EXCH") exch = d;
  }
  // Like exchangelib and the migration service: prefer the EXPR (external) EwsUrl, fall back to EXCH;
  // the server version comes from EXCH when EXPR does not carry it.
  if (!expr && !exch) return failure{"bad-response", "Autodiscover named no EwsUrl; the migration cannot find EWS"};
  discovery d = expr ? *expr : *exch;
  if (d.server_version.empty() && exch) d.server_version = exch->server_version;
  // Outlook Anywhere: EXPR's Server is the RPC proxy, EXCH's the mailbox server behind it (MS-OXDSCLI 2.2.4.1.1.2).
  d.outlook_anywhere.legacy_dn = child_local(child_local(response, "User"), "LegacyDN").text().get();
  for (const auto& protocol : account.children()) {
    if (local_name(protocol) != "Protocol") continue;
    const std::string type = child_local(protocol, "Type").text().get();
    if (type == "EXPR" && d.outlook_anywhere.proxy_server.empty()) {
      d.outlook_anywhere.proxy_server = child_local(protocol, "Server").text().get();
      d.outlook_anywhere.auth_package = child_local(protocol, "AuthPackage").text().get();
    }
    if (type == "EXCH" && d.outlook_anywhere.rpc_server.empty()) {
      d.outlook_anywhere.rpc_server = child_local(protocol, "Server").text().get();
    }
  }
  return d;
}

/// http(s)://host[:port]/path, as Autodiscover URLs are written.
struct url_parts {
  bool https = true;
  std::string host;
  unsigned short port = 443;
  std::string path = "/";
};

std::optional<url_parts> parse_url(const std::string& url) {
  url_parts u;
  std::string rest;
  if (boost::algorithm::istarts_with(url, "https://")) {
    rest = url.substr(8);
  } else if (boost::algorithm::istarts_with(url, "http://")) {
    rest = url.substr(7);
    u.https = false;
    u.port = 80;
  } else {
    return std::nullopt;
  }
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash);
  if (const auto colon = authority.rfind(':'); colon != std::string::npos && authority.back() != ']') {
    const std::string port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port) == 0 || std::stoul(port) > 65535) {
      return std::nullopt;
    }
    u.port = static_cast<unsigned short>(std::stoul(port));
    authority.resize(colon);
  }
  if (authority.empty()) return std::nullopt;
  u.host = authority;
  return u;
}

/// Where the migration service looks for Autodiscover about `email` (MS-OXDSCLI 3.1.5; no AD SCP from the
/// cloud, and the DNS SRV lookup is left out: a rehearsal has no DNS of its own).
std::vector<std::string> domain_candidates(const std::string& email) {
  const std::string domain = email.substr(email.find('@') + 1);
  return {"https://" + domain + "/autodiscover/autodiscover.xml",
          "https://autodiscover." + domain + "/autodiscover/autodiscover.xml",
          "http://autodiscover." + domain + "/autodiscover/autodiscover.xml"};
}

constexpr unsigned max_autodiscover_redirects = 10;  // the Managed API's and exchangelib's limit

std::string decode_server_version(const std::string& hex) {
  if (hex.size() != 8 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return hex;
  const unsigned long v = std::stoul(hex, nullptr, 16);
  return std::to_string((v >> 22) & 0x3f) + "." + std::to_string((v >> 16) & 0x3f) + "." + std::to_string(v & 0x7fff);
}

/// The owner a fake-exchange FolderId names (its ids carry the mailbox owner; see fake_exchange/ews.cpp),
/// so that a response delivered to the wrong user is caught. Empty for ids of any other shape.
std::string folder_owner(const std::string& folder_id) {
  const auto raw = base64_decode(folder_id);
  if (!raw || raw->size() < 5) return "";
  const auto size = static_cast<unsigned char>((*raw)[4]);
  if (raw->size() < 5u + size) return "";
  return raw->substr(5, size);
}

/// One migration probe: the state of its authentication across requests.
class migration_probe {
 public:
  migration_probe(net::any_io_executor ex, ssl::context& tls, const client_settings& s)
      : s_(s), executor_(ex), tls_(tls), conn_(std::move(ex), tls, s) {}

  net::awaitable<probe_result> run() {
    auto discovered = co_await discover();
    if (auto* r = std::get_if<probe_result>(&discovered)) co_return *r;
    const discovery disc = std::get<discovery>(discovered);
    // EWS goes to the public name, on the step's own connection.
    cur_ = &conn_;
    other_.reset();
    if (auto f = co_await conn_.ensure_connected()) co_return fail(*f);

    if ((s_.action == "migrate-mailbox" && s_.transport == "outlook-anywhere") || s_.action == "outlook-anywhere-session") {
      const std::string preamble = conn_.tls_description() + " to " + s_.server_name + ", " + s_.auth + " auth" + route_ + "; ";
      if (s_.action == "migrate-mailbox") co_return co_await migrate_over_outlook_anywhere(s_, disc.outlook_anywhere, preamble);
      auto endpoint = disc.outlook_anywhere;
      if (!s_.rpc_server.empty()) endpoint.rpc_server = s_.rpc_server;  // preflight's --rpc-server
      co_return co_await check_outlook_anywhere_session(s_, endpoint, preamble);
    }
    // 3. The EwsUrl must point at the public name, or Exchange Online could not follow it.
    const std::string prefix = "https://" + s_.server_name;
    if (!boost::algorithm::istarts_with(disc.ews_url, prefix + "/") &&
        !boost::algorithm::istarts_with(disc.ews_url, prefix + ":")) {
      co_return probe_result{"bad-response", "Autodiscover sent EwsUrl " + disc.ews_url + ", which is not on the public "
                                             "name " + s_.server_name + "; set the EWS ExternalUrl to https://" +
                                             s_.server_name + "/EWS/Exchange.asmx"};
    }
    std::string path = disc.ews_url.substr(prefix.size());
    path = path.substr(path.find('/'));
    const std::string preamble = conn_.tls_description() + " to " + s_.server_name + ", " + s_.auth +
                                 " auth, Exchange " + decode_server_version(disc.server_version) + route_ + "; ";
    if (s_.action == "migrate-mailbox") co_return co_await migrate(path, preamble);

    // 4. EWS: read the inbox folder, as often as asked, checking whose mailbox answered each time.
    std::string summary;
    for (unsigned i = 0; i < std::max(1u, s_.ews_requests); ++i) {
      auto ews = co_await authenticated(soap_post(path, get_inbox_request, ""));
      if (auto* f = std::get_if<failure>(&ews)) co_return fail(*f);
      const auto& res = std::get<response_t>(ews);
      if (res.result() != http::status::ok) co_return fail(http_failure(res, "EWS GetFolder"));
      pugi::xml_document doc;
      if (!doc.load_string(res.body().c_str())) co_return probe_result{"bad-response", "EWS answered with invalid XML"};
      const auto svi = descendant_local(doc, "ServerVersionInfo");
      const auto message = descendant_local(doc, "GetFolderResponseMessage");
      if (!svi || !message || std::string(message.attribute("ResponseClass").value()) != "Success") {
        co_return probe_result{"bad-response", std::string("EWS GetFolder(inbox) did not succeed: ") +
                                                   descendant_local(doc, "ResponseCode").text().get()};
      }
      const auto folder = descendant_local(message, "Folders").first_child();
      const std::string owner = folder_owner(child_local(folder, "FolderId").attribute("Id").value());
      if (!owner.empty() && !boost::algorithm::iequals(owner, s_.email)) {
        co_return probe_result{"identity-crossover",
                               "EWS request " + std::to_string(i + 1) + " for " + s_.email + " was answered from " +
                                   owner + "'s mailbox: a proxy delivered another user's connection or response"};
      }
      summary = std::string("EWS ") + svi.attribute("MajorVersion").value() + "." + svi.attribute("MinorVersion").value() +
                "." + svi.attribute("MajorBuildNumber").value() + " GetFolder(inbox): \"" +
                child_local(folder, "DisplayName").text().get() + "\" with " +
                child_local(folder, "TotalCount").text().get() + " items";
    }
    if (s_.ews_requests > 1) summary += " (" + std::to_string(s_.ews_requests) + " requests, all from the right mailbox)";
    co_return probe_result{"ok", conn_.tls_description() + " to " + s_.server_name + ", " + s_.auth +
                                     " auth; Autodiscover: EwsUrl " + disc.ews_url + " (Exchange " +
                                     decode_server_version(disc.server_version) + ")" + route_ + "; " + summary};
  }

 private:
  /// Autodiscover as the migration service runs it: the candidate URLs in order (one URL, the public name,
  /// unless autodiscover = "domain"), redirectAddr, redirectUrl and HTTP redirects followed, at most 10.
  /// Returns the settings found, or the step's result when none were.
  net::awaitable<std::variant<discovery, probe_result>> discover() {
    std::string email = s_.autodiscover_email.empty() ? s_.email : s_.autodiscover_email;
    const auto candidates_for = [this](const std::string& address) {
      return s_.autodiscover == "domain"
                 ? domain_candidates(address)
                 : std::vector<std::string>{"https://" + s_.server_name + "/autodiscover/autodiscover.xml"};
    };
    std::vector<std::string> candidates = candidates_for(email);
    std::vector<std::string> trail;  // what each URL answered, for the explanation
    std::optional<failure> telling;  // the most specific failure seen
    unsigned redirects = 0;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      const std::string url = candidates[i];
      auto answer = co_await ask(url, email);
      if (auto* d = std::get_if<discovery>(&answer)) {
        if (!trail.empty()) {
          trail.push_back(url + ": settings");
          route_ = " (Autodiscover for " + email + " via " + join(trail, ", ") + ")";
        }
        co_return *d;
      }
      if (auto* f = std::get_if<failure>(&answer)) {
        // With a single URL and no redirect, its failure is the answer (TLS refused, wrong certificate, ...).
        if (candidates.size() == 1 && redirects == 0) co_return fail(*f);
        trail.push_back(url + ": " + f->outcome + " (" + f->explanation + ")");
        if (f->outcome != "connect-failed" || !telling) telling = *f;
        continue;
      }
      const auto& r = std::get<ad_redirect>(answer);
      trail.push_back(url + ": " + (r.to_address ? "redirectAddr " : "redirect to ") + r.target);
      if (++redirects > max_autodiscover_redirects) {
        co_return probe_result{"autodiscover-failed",
                               "Autodiscover for " + email + " was redirected more than " +
                                   std::to_string(max_autodiscover_redirects) + " times (last: " + trail.back() +
                                   "); the migration service gives up there: fix the redirect loop in the "
                                   "Autodiscover configuration (redirectAddr/redirectUrl or the HTTP redirect)"};
      }
      if (r.to_address) {
        email = r.target;
        candidates = candidates_for(email);
      } else if (!boost::algorithm::istarts_with(r.target, "https://")) {
        // MS-OXDSCLI: a redirect is followed only to https; anything else could hand credentials to anyone.
        trail.back() += " (not followed: not https)";
        continue;
      } else {
        candidates = {r.target};
      }
      i = static_cast<std::size_t>(-1);  // start over with the new list
    }
    probe_result none;
    none.outcome = telling ? telling->outcome : "autodiscover-failed";
    none.explanation = "Autodiscover found no settings for " + email + ": " + join(trail, "; ") +
                       "; fix: publish https://autodiscover." + email.substr(email.find('@') + 1) +
                       "/autodiscover/autodiscover.xml through the bridge (its certificate must name that host), or "
                       "give the migration endpoint the server names by hand";
    co_return none;
  }

  static std::string join(const std::vector<std::string>& parts, const char* separator) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
    return out;
  }

  /// One Autodiscover POST at `url` about `email`: unauthenticated probe (learns the schemes offered), then
  /// with the step's credentials.
  net::awaitable<std::variant<discovery, ad_redirect, failure>> ask(const std::string& url, const std::string& email) {
    const auto u = parse_url(url);
    if (!u) co_return failure{"bad-response", "'" + url + "' is not an http:// or https:// URL"};
    if (!u->https) co_return co_await ask_http_redirect(*u);
    use_for(*u);
    if (auto f = co_await cur_->ensure_connected()) co_return *f;

    auto probe = co_await cur_->exchange(soap_post(u->path, autodiscover_request(email), ""));
    if (auto* f = std::get_if<failure>(&probe)) co_return *f;
    const auto& challenge = std::get<response_t>(probe);
    if (challenge.result() != http::status::unauthorized) {
      co_return http_failure(challenge, "Autodiscover probe (expected 401)");
    }
    offered_ = offered_schemes(challenge);
    const bool ntlm = s_.auth == "ntlm";
    if (!offers(ntlm ? "NTLM" : "Basic")) {
      co_return failure{"auth-refused", std::string("Autodiscover does not offer ") + (ntlm ? "NTLM" : "Basic") +
                                            " authentication; enable it on the Autodiscover and EWS virtual "
                                            "directories (the migration endpoint is set to use it)"};
    }
    auto answer = co_await authenticated(soap_post(u->path, autodiscover_request(email), ""));
    if (auto* f = std::get_if<failure>(&answer)) co_return *f;
    const auto& ad = std::get<response_t>(answer);
    if (ad.result() != http::status::ok) co_return http_failure(ad, "Autodiscover");
    auto found = parse_autodiscover(ad.body());
    if (auto* f = std::get_if<failure>(&found)) co_return *f;
    if (auto* r = std::get_if<ad_redirect>(&found)) co_return *r;
    co_return std::get<discovery>(found);
  }

  /// The plain-HTTP candidate: an unauthenticated GET whose only useful answer is a redirect to https.
  net::awaitable<std::variant<discovery, ad_redirect, failure>> ask_http_redirect(const url_parts& u) {
    const std::string where = "http://" + u.host + (u.port == 80 ? "" : ":" + std::to_string(u.port));
    const auto it = s_.resolve.find(u.host + ":" + std::to_string(u.port));
    if (it == s_.resolve.end()) {
      co_return failure{"connect-failed", "nothing answers " + where + " in this rehearsal (the step's resolve table has no \"" +
                                              u.host + ":" + std::to_string(u.port) + "\")"};
    }
    const host_port to = parse_host_port(it->second, "resolve", false);
    beast::tcp_stream stream(executor_);
    tcp::resolver resolver(executor_);
    stream.expires_after(scaled_clock::to_real(s_.connect_timeout));
    auto [rec, endpoints] = co_await resolver.async_resolve(to.host, std::to_string(to.port), use_tuple);
    if (rec) co_return failure{"connect-failed", "cannot resolve " + to.host + ": " + rec.message()};
    auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
    if (cec) co_return failure{"connect-failed", "cannot connect to " + where + ": " + cec.message()};
    http::request<http::empty_body> req{http::verb::get, u.path, 11};
    req.set(http::field::host, u.host);
    req.set(http::field::user_agent, "MSRPC");
    stream.expires_after(scaled_clock::to_real(s_.request_timeout));
    auto [wec, written] = co_await http::async_write(stream, req, use_tuple);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    error_code read_ec = wec;
    if (!wec) std::tie(read_ec, std::ignore) = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (read_ec) co_return failure{"connection-lost", where + " did not answer the redirect probe: " + read_ec.message()};
    const auto& res = parser.get();
    const unsigned code = res.result_int();
    if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308) {
      co_return failure{"http-error", where + " answered HTTP " + std::to_string(code) + "; only a redirect helps there"};
    }
    const std::string location(res[http::field::location]);
    if (!boost::algorithm::istarts_with(location, "https://")) {
      co_return failure{"bad-response", where + " redirected to '" + location +
                                            "', which is not https://; Autodiscover follows only https redirects"};
    }
    co_return ad_redirect{false, location};
  }

  /// Points cur_ at a connection for https://u.host: the step's own when that is the public name, else
  /// one of its own, to where the resolve table (or the step's connect address) says the name points.
  void use_for(const url_parts& u) {
    const auto it = s_.resolve.find(u.host);
    if (it == s_.resolve.end() && boost::algorithm::iequals(u.host, s_.server_name)) {
      cur_ = &conn_;
      return;
    }
    if (other_ && boost::algorithm::iequals(other_settings_.server_name, u.host)) {
      cur_ = &*other_;
      return;
    }
    other_.reset();
    other_settings_ = s_;
    other_settings_.server_name = u.host;
    if (it != s_.resolve.end()) {
      const host_port to = parse_host_port(it->second, "resolve", false);
      other_settings_.host = to.host;
      other_settings_.port = to.port;
    }
    other_.emplace(executor_, tls_, other_settings_);
    cur_ = &*other_;
  }

  /// The migration itself: page through every folder with FindItem (pages of page_size), fetch the MIME
  /// of every item with GetItem, and check each item's SHA-256 against fake-exchange's manifest.
  net::awaitable<probe_result> migrate(const std::string& path, const std::string& preamble) {
    const auto manifest = load_manifest(s_.manifest_file, s_.email);
    const auto begin = std::chrono::steady_clock::now();
    const std::uint64_t total_items = item_count(manifest), total_bytes = byte_count(manifest);
    std::optional<progress_meter> progress;
    if (s_.show_progress) progress.emplace("migrating " + s_.email, total_items, total_bytes);
    std::uint64_t items = 0, bytes = 0;
    for (const auto& [folder, name, expected] : manifest) {
      std::map<std::string, const expected_item*> by_id;
      for (const auto& e : expected) by_id[e.id] = &e;
      // List the folder page by page, as the migration service does: FindItem with an indexed view, or
      // SyncFolderItems from an empty sync state (its incremental pass).
      const bool sync = s_.listing == "sync-folder-items";
      const std::string op = std::string(sync ? "SyncFolderItems(" : "FindItem(") + folder + ")";
      std::vector<std::string> ids;
      std::string state;
      for (unsigned offset = 0, pages = 0;; ++pages) {
        // A named body: GCC 12 double-frees a string temporary chosen by ?: inside a co_await expression.
        std::string body = sync ? sync_folder_items_request(folder, s_.page_size, state)
                                : find_item_request(folder, s_.page_size, offset);
        auto page = co_await authenticated(soap_post(path, std::move(body), ""));
        if (auto* f = std::get_if<failure>(&page)) co_return fail(*f);
        const auto& res = std::get<response_t>(page);
        if (res.result() != http::status::ok) co_return fail(http_failure(res, "EWS " + op));
        pugi::xml_document doc;
        const bool parsed = static_cast<bool>(doc.load_string(res.body().c_str()));
        if (sync) {
          const auto message = parsed ? descendant_local(doc, "SyncFolderItemsResponseMessage") : pugi::xml_node();
          if (!message || std::string(message.attribute("ResponseClass").value()) != "Success") {
            co_return probe_result{"bad-response", "EWS " + op + " did not succeed: " +
                                                       descendant_local(doc, "ResponseCode").text().get()};
          }
          for (const auto& change : child_local(message, "Changes").children()) {
            ids.emplace_back(child_local(change.first_child(), "ItemId").attribute("Id").value());
          }
          const std::string next_state = child_local(message, "SyncState").text().get();
          // A server that keeps saying "more" without moving the state would loop for ever.
          if (child_local(message, "IncludesLastItemInRange").text().as_bool(true)) break;
          if (next_state.empty() || next_state == state || pages > 100000) {
            co_return probe_result{"bad-response", "EWS " + op + " says more changes follow but does not advance its sync state"};
          }
          state = next_state;
          continue;
        }
        const auto root = parsed ? descendant_local(doc, "RootFolder") : pugi::xml_node();
        if (!root) co_return probe_result{"bad-response", "EWS " + op + " answered without a RootFolder"};
        for (const auto& item : child_local(root, "Items").children()) {
          ids.emplace_back(child_local(item, "ItemId").attribute("Id").value());
        }
        const unsigned next = root.attribute("IndexedPagingOffset").as_uint(offset);
        if (root.attribute("IncludesLastItemInRange").as_bool(true) || next <= offset) break;
        offset = next;
      }
      if (ids.size() != expected.size()) {
        co_return probe_result{"data-missing", std::string(sync ? "SyncFolderItems" : "FindItem") + " listed " +
                                                   std::to_string(ids.size()) + " items in " + folder +
                                                   " where the mailbox holds " + std::to_string(expected.size())};
      }
      // GetItem: small items in batches, each large one on its own.
      for (std::size_t next = 0; next < ids.size();) {
        std::vector<std::string> batch;
        std::uint64_t batch_bytes = 0;
        while (next < ids.size() && batch.size() < s_.batch &&
               (batch.empty() || batch_bytes + by_id[ids[next]]->size <= 4'000'000)) {
          if (by_id.count(ids[next]) == 0) {
            co_return probe_result{"bad-response", "FindItem listed an item the manifest does not know: " + ids[next]};
          }
          batch_bytes += by_id[ids[next]]->size;
          batch.push_back(ids[next++]);
        }
        // A transient failure (reset, stall, 5xx) is retried after a back-off on a new connection, as the
        // migration service does; what arrived of the failed attempt is discarded, never half-counted.
        std::optional<mime_extractor> attempt;
        std::optional<failure> last;
        for (unsigned tries = 0;; ++tries) {
          attempt.emplace();
          auto& extractor = *attempt;
          auto got = co_await authenticated_streaming(path, get_item_request(batch),
                                                      [&extractor](const char* d, std::size_t n) { extractor.feed(d, n); });
          if (auto* f = std::get_if<failure>(&got)) {
            last = *f;
          } else if (const auto& res = std::get<response_t>(got); res.result() != http::status::ok) {
            last = http_failure(res, "EWS GetItem");
            if (res.result_int() < 500) co_return fail(*last);
          } else {
            last.reset();
          }
          if (!last) break;
          if (!transient(*last) || tries >= s_.retries) {
            if (tries > 0) last->explanation += " (after " + std::to_string(tries) + " retries)";
            co_return fail(*last);
          }
          ++retries_;
          retry_reasons_.insert(last->outcome);
          timer backoff(co_await net::this_coro::executor, s_.backoff_base * (1u << std::min(tries, 5u)));
          co_await backoff.async_wait(use_tuple);
        }
        const auto& extractor = *attempt;
        if (extractor.items().size() != batch.size()) {
          co_return probe_result{"data-missing", "GetItem returned the MIME of " + std::to_string(extractor.items().size()) +
                                                     " of " + std::to_string(batch.size()) + " items requested from " +
                                                     folder};
        }
        for (std::size_t k = 0; k < batch.size(); ++k) {
          const auto& want = *by_id[batch[k]];
          const auto& have = extractor.items()[k];
          if (have.sha256 != want.sha256 || have.bytes != want.size || !have.valid_base64) {
            co_return probe_result{"data-corruption",
                                   "item " + batch[k] + " in " + folder + ": got " + std::to_string(have.bytes) +
                                       " bytes with SHA-256 " + have.sha256.substr(0, 16) + "..., the manifest says " +
                                       std::to_string(want.size) + " bytes, " + want.sha256.substr(0, 16) + "..."};
          }
          ++items;
          bytes += have.bytes;
          if (progress) progress->update(items, bytes);
          if (s_.shared_progress) s_.shared_progress->advance(1, have.bytes);
        }
      }
    }
    const double seconds =
        std::max(1e-3, std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    std::string retried;
    if (retries_ > 0) {
      std::string reasons;
      for (const auto& r : retry_reasons_) reasons += (reasons.empty() ? "" : ", ") + r;
      retried = "; " + std::to_string(retries_) + " GetItem batch(es) retried after transient failures (" + reasons + ")";
    }
    progress.reset();
    probe_result done{"ok", preamble + "migrated " + std::to_string(items) + " items (" + megabytes(bytes) +
                                ") from " + std::to_string(manifest.size()) + " folders in " +
                                std::to_string(static_cast<int>(seconds * 1000)) + " ms (" + megabytes_per_second(bytes, seconds) +
                                "), every SHA-256 matched the manifest" + retried};
    done.items = items;
    done.bytes = bytes;
    co_return done;
  }

  /// authenticated(), for a response streamed into `sink` (GetItem with MIME).
  net::awaitable<std::variant<response_t, failure>> authenticated_streaming(const std::string& path, std::string body,
                                                                            exo_connection::body_sink sink) {
    auto req = soap_post(path, std::move(body), "");
    if (s_.auth != "ntlm") {
      req.set(http::field::authorization, basic_authorization(s_));
      co_return co_await cur_->exchange_streaming(std::move(req), std::move(sink));
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!ntlm_ready()) {
        // Authenticate this connection with a small request first; the large answer then streams.
        auto warm = co_await authenticated(soap_post(path, get_inbox_request, ""));
        if (auto* f = std::get_if<failure>(&warm)) co_return *f;
      }
      auto r = co_await cur_->exchange_streaming(req, sink);
      auto* res = std::get_if<response_t>(&r);
      if (res == nullptr || res->result() != http::status::unauthorized) co_return r;
      ntlm_connection_ = 0;
    }
    co_return failure{"auth-refused", "the server keeps refusing the NTLM-authenticated connection"};
  }

  /// NTLM authenticated the TCP connection requests now go to.
  bool ntlm_ready() const { return ntlm_connection_ != 0 && ntlm_owner_ == cur_ && ntlm_connection_ == cur_->serial(); }

  static probe_result fail(const failure& f) { return {f.outcome, f.explanation}; }

  bool offers(std::string_view scheme) const { return rehearse::offers(offered_, scheme); }

  /// Sends `req` with the step's credentials: Basic on every request; NTLM once per connection (the
  /// handshake authenticates the TCP connection, so later requests on it carry no Authorization).
  net::awaitable<std::variant<response_t, failure>> authenticated(http::request<http::string_body> req) {
    if (s_.auth != "ntlm") {
      req.set(http::field::authorization, basic_authorization(s_));
      auto r = co_await cur_->exchange(req);
      if (auto* res = std::get_if<response_t>(&r); res != nullptr && res->result() == http::status::unauthorized) {
        co_return failure{"auth-refused", "the server refused the Basic credentials of " + s_.email +
                                              "; check the migration endpoint's user name and password"};
      }
      co_return r;
    }
    if (ntlm_ready()) {
      auto r = co_await cur_->exchange(req);
      auto* res = std::get_if<response_t>(&r);
      if (res == nullptr || res->result() != http::status::unauthorized) co_return r;
      // The server no longer knows this connection (a proxy moved us to another server connection):
      // authenticate again, as the migration service would.
    }
    co_return co_await ntlm_handshake(std::move(req));
  }

  net::awaitable<std::variant<response_t, failure>> ntlm_handshake(http::request<http::string_body> req) {
    auto r3 = co_await ntlm_exchange(*cur_, std::move(req), s_);
    if (auto* f = std::get_if<failure>(&r3)) co_return *f;
    const auto& final_response = std::get<response_t>(r3);
    if (final_response.result() != http::status::unauthorized) {
      ntlm_connection_ = cur_->serial();
      ntlm_owner_ = cur_;
      co_return r3;
    }
    auto check = soap_post("/autodiscover/autodiscover.xml", autodiscover_request(s_.email), "");
    co_return co_await explain_ntlm_refusal(*cur_, std::move(check), s_, offers("Basic"));
  }

  const client_settings& s_;
  net::any_io_executor executor_;
  ssl::context& tls_;
  exo_connection conn_;                    ///< to the public name (EWS, and Autodiscover there)
  client_settings other_settings_;         ///< other_'s: another Autodiscover host
  std::optional<exo_connection> other_;
  exo_connection* cur_ = &conn_;           ///< the connection requests go to
  std::string route_;                      ///< how Autodiscover got to the settings, when not directly
  std::vector<std::string> offered_;
  const exo_connection* ntlm_owner_ = nullptr;  ///< the connection NTLM authenticated (with ntlm_connection_)
  unsigned ntlm_connection_ = 0;
  unsigned retries_ = 0;                   ///< GetItem batches retried after a transient failure
  std::set<std::string> retry_reasons_;
};

}  // namespace

net::awaitable<probe_result> run_mailboxes(client_settings base, unsigned mailboxes) {
  if (mailboxes <= 1) co_return co_await run_migration_probe(base);
  const auto executor = co_await net::this_coro::executor;
  const auto begin = std::chrono::steady_clock::now();
  std::vector<probe_result> results(mailboxes);
  unsigned remaining = mailboxes;
  net::steady_timer all_done(executor, net::steady_timer::time_point::max());
  // One progress line for the whole batch: every mailbox's items and bytes from the manifest. A manifest that
  // cannot be read leaves the batch without a meter; each mailbox's migration then reports the problem.
  std::shared_ptr<progress_meter> meter;
  if (base.action == "migrate-mailbox" && base.show_progress) {
    try {
      std::uint64_t total_items = 0, total_bytes = 0;
      for (unsigned i = 0; i < mailboxes; ++i) {
        const auto manifest = load_manifest(base.manifest_file, expand_index(base.email, i + 1, mailboxes));
        total_items += item_count(manifest);
        total_bytes += byte_count(manifest);
      }
      meter = std::make_shared<progress_meter>("migrating " + std::to_string(mailboxes) + " mailboxes", total_items,
                                               total_bytes);
    } catch (const std::exception&) {
      meter.reset();
    }
  }
  for (unsigned i = 0; i < mailboxes; ++i) {
    client_settings one = base;
    one.email = expand_index(base.email, i + 1, mailboxes);
    one.password = expand_index(base.password, i + 1, mailboxes);
    one.show_progress = false;
    one.shared_progress = meter;
    net::co_spawn(executor, run_migration_probe(std::move(one)),
                  [&results, &remaining, &all_done, i](std::exception_ptr e, probe_result r) {
                    results[i] = e ? probe_result{"bad-response", "the client failed unexpectedly"} : std::move(r);
                    if (--remaining == 0) all_done.cancel();
                  });
  }
  co_await all_done.async_wait(use_tuple);
  meter.reset();  // ends a redrawn terminal line before the summary
  const double seconds = std::max(1e-3, std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
  std::uint64_t items = 0, bytes = 0;
  unsigned failed = 0;
  const probe_result* first_failure = nullptr;
  std::size_t first_index = 0;
  std::map<std::string, double> metrics;  // every mailbox's counts, summed
  for (std::size_t i = 0; i < results.size(); ++i) {
    items += results[i].items;
    bytes += results[i].bytes;
    for (const auto& [name, value] : results[i].metrics) metrics[name] += value;
    if (results[i].outcome == "ok") continue;
    if (failed++ == 0) first_failure = &results[i], first_index = i;
  }
  metrics["seconds"] = seconds;
  metrics["mailboxes"] = mailboxes;
  metrics["mailboxes_failed"] = failed;
  const auto count = [&](const char* name) { return std::to_string(static_cast<std::uint64_t>(metrics[name])); };
  if (first_failure != nullptr) {
    probe_result r{first_failure->outcome,
                   std::to_string(failed) + " of " + std::to_string(mailboxes) + " mailboxes failed; the first, " +
                       expand_index(base.email, static_cast<unsigned>(first_index + 1), mailboxes) + ": " +
                       first_failure->explanation};
    r.items = items;
    r.bytes = bytes;
    r.metrics = std::move(metrics);
    co_return r;
  }
  std::string summary = std::to_string(mailboxes) + " mailboxes at once (" + base.auth + " auth): ";
  if (base.action == "migrate-mailbox") {
    summary += "migrated " + std::to_string(items) + " items (" + megabytes(bytes) + ") in " +
               std::to_string(static_cast<int>(seconds * 1000)) + " ms (" + megabytes_per_second(bytes, seconds) +
               "), every SHA-256 matched the manifest, every answer from its own mailbox";
    if (base.transport == "outlook-anywhere") {
      summary += "; over Outlook Anywhere, one virtual connection each (" + count("virtual_connections") +
                 " in all): " + count("in_channels_recycled") + " IN and " + count("out_channels_recycled") +
                 " OUT channels recycled, " + count("flow_control_stalls") + " flow-control stalls, " +
                 count("retries") + " retries";
    }
  } else {
    summary += "every discovery and EWS read succeeded, every answer from its own mailbox";
  }
  probe_result all{"ok", std::move(summary)};
  all.items = items;
  all.bytes = bytes;
  all.metrics = std::move(metrics);
  co_return all;
}

net::awaitable<probe_result> run_migration_probe(client_settings s) {
  ssl::context tls = make_tls_context(tls_profile::exchange_online_client, {.verify = s.trust, .ca_file = s.ca_file});
  migration_probe probe(co_await net::this_coro::executor, tls, s);
  co_return co_await probe.run();
}

}  // namespace exbridge::rehearse
