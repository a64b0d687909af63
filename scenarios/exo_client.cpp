// Exchange Online migration client emulation (walking-skeleton depth: discovery and one EWS read).
#include "scenarios/exo_client.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/json.hpp>
#include <pugixml.hpp>

#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <optional>
#include <variant>

#include "common/base64.hpp"
#include "common/cli.hpp"
#include "common/errors.hpp"
#include "common/xml.hpp"
#include "scenarios/mime_extractor.hpp"
#include "scenarios/progress.hpp"

namespace exbridge::scenario {
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

std::string get_item_request(const std::vector<std::string>& ids) {
  std::string list;
  for (const auto& id : ids) list += "<t:ItemId Id=\"" + xml_escape(id) + "\" />";
  return ews_envelope("<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
                      "<t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds>" + list +
                      "</m:ItemIds></m:GetItem>");
}

/// One item as the manifest describes it.
struct expected_item {
  std::string id;
  std::uint64_t size = 0;
  std::string sha256;
};

/// folder -> items, for one user, from fake-exchange's manifest. Throws config_error when unusable.
std::vector<std::pair<std::string, std::vector<expected_item>>> load_manifest(const std::string& file,
                                                                             const std::string& email) {
  std::ifstream in(file);
  if (!in) {
    throw config_error("manifest '" + file + "' cannot be read; let the exchange process write it with "
                       "'--manifest ${run.dir}/manifest.json'");
  }
  std::stringstream text;
  text << in.rdbuf();
  error_code ec;
  const boost::json::value doc = boost::json::parse(text.str(), ec);
  if (ec || !doc.is_object() || !doc.as_object().contains("users")) {
    throw config_error("manifest '" + file + "' is not a fake-exchange manifest (" + ec.message() + ")");
  }
  for (const auto& u : doc.at("users").as_array()) {
    if (!boost::algorithm::iequals(std::string(u.at("email").as_string()), email)) continue;
    std::vector<std::pair<std::string, std::vector<expected_item>>> out;
    for (const auto& f : u.at("folders").as_array()) {
      std::vector<expected_item> items;
      for (const auto& it : f.at("items").as_array()) {
        items.push_back({std::string(it.at("id").as_string()), it.at("size").to_number<std::uint64_t>(),
                         std::string(it.at("sha256").as_string())});
      }
      out.emplace_back(std::string(f.at("id").as_string()), std::move(items));
    }
    return out;
  }
  throw config_error("manifest '" + file + "' has no mailbox for " + email);
}

/// "26.4 MB/s".
std::string megabytes_per_second(std::uint64_t bytes, double seconds) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 / seconds << " MB/s";
  return out.str();
}

std::string megabytes(std::uint64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  return out.str();
}

struct discovery {
  std::string ews_url;
  std::string server_version;
};

std::variant<discovery, failure> parse_autodiscover(const std::string& xml) {
  pugi::xml_document doc;
  if (!doc.load_string(xml.c_str())) return failure{"bad-response", "Autodiscover answered with a document that is not XML"};
  const auto response = child_local(doc.document_element(), "Response");
  if (const auto error = child_local(response, "Error")) {
    return failure{"bad-response", std::string("Autodiscover error ") + child_local(error, "ErrorCode").text().get() +
                                       ": " + child_local(error, "Message").text().get()};
  }
  const auto account = child_local(response, "Account");
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
  return d;
}

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

/// Failures the migration service retries: the connection or the server had a moment, not a verdict.
bool transient(const failure& f) {
  static const std::set<std::string> kinds{"connection-lost", "tls-reset",     "client-timeout", "connect-failed",
                                           "proxy-error",     "proxy-timeout", "http-error"};
  return kinds.count(f.outcome) != 0;
}

/// One migration probe: the state of its authentication across requests.
class migration_probe {
 public:
  migration_probe(net::any_io_executor ex, ssl::context& tls, const client_settings& s)
      : s_(s), conn_(std::move(ex), tls, s) {}

  net::awaitable<probe_result> run() {
    if (auto f = co_await conn_.ensure_connected()) co_return fail(*f);

    // 1. Unauthenticated probe: learn the offered schemes from WWW-Authenticate, as the service does.
    auto probe = co_await conn_.exchange(soap_post("/autodiscover/autodiscover.xml", autodiscover_request(s_.email), ""));
    if (auto* f = std::get_if<failure>(&probe)) co_return fail(*f);
    const auto& challenge = std::get<response_t>(probe);
    if (challenge.result() != http::status::unauthorized) {
      co_return fail(http_failure(challenge, "Autodiscover probe (expected 401)"));
    }
    offered_ = offered_schemes(challenge);
    const bool ntlm = s_.auth == "ntlm";
    if (!offers(ntlm ? "NTLM" : "Basic")) {
      co_return probe_result{"auth-refused", std::string("Autodiscover does not offer ") + (ntlm ? "NTLM" : "Basic") +
                                                 " authentication; enable it on the Autodiscover and EWS virtual "
                                                 "directories (the migration endpoint is set to use it)"};
    }

    // 2. Autodiscover with credentials.
    auto answer = co_await authenticated(soap_post("/autodiscover/autodiscover.xml", autodiscover_request(s_.email), ""));
    if (auto* f = std::get_if<failure>(&answer)) co_return fail(*f);
    const auto& ad = std::get<response_t>(answer);
    if (ad.result() != http::status::ok) co_return fail(http_failure(ad, "Autodiscover"));
    const auto found = parse_autodiscover(ad.body());
    if (auto* f = std::get_if<failure>(&found)) co_return fail(*f);
    const auto& disc = std::get<discovery>(found);

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
                                 " auth, Exchange " + decode_server_version(disc.server_version) + "; ";
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
                                     decode_server_version(disc.server_version) + "); " + summary};
  }

 private:
  /// The migration itself: page through every folder with FindItem (pages of page_size), fetch the MIME
  /// of every item with GetItem, and check each item's SHA-256 against fake-exchange's manifest.
  net::awaitable<probe_result> migrate(const std::string& path, const std::string& preamble) {
    const auto manifest = load_manifest(s_.manifest_file, s_.email);
    const auto begin = std::chrono::steady_clock::now();
    std::uint64_t total_items = 0, total_bytes = 0;
    for (const auto& [folder, expected] : manifest) {
      total_items += expected.size();
      for (const auto& e : expected) total_bytes += e.size;
    }
    std::optional<progress_meter> progress;
    if (s_.show_progress) progress.emplace("migrating " + s_.email, total_items, total_bytes);
    std::uint64_t items = 0, bytes = 0;
    for (const auto& [folder, expected] : manifest) {
      std::map<std::string, const expected_item*> by_id;
      for (const auto& e : expected) by_id[e.id] = &e;
      // FindItem, page by page, as the migration service does.
      std::vector<std::string> ids;
      for (unsigned offset = 0;;) {
        auto page = co_await authenticated(soap_post(path, find_item_request(folder, s_.page_size, offset), ""));
        if (auto* f = std::get_if<failure>(&page)) co_return fail(*f);
        const auto& res = std::get<response_t>(page);
        if (res.result() != http::status::ok) co_return fail(http_failure(res, "EWS FindItem(" + folder + ")"));
        pugi::xml_document doc;
        const auto root = doc.load_string(res.body().c_str()) ? descendant_local(doc, "RootFolder") : pugi::xml_node();
        if (!root) co_return probe_result{"bad-response", "EWS FindItem(" + folder + ") answered without a RootFolder"};
        for (const auto& item : child_local(root, "Items").children()) {
          ids.emplace_back(child_local(item, "ItemId").attribute("Id").value());
        }
        const unsigned next = root.attribute("IndexedPagingOffset").as_uint(offset);
        if (root.attribute("IncludesLastItemInRange").as_bool(true) || next <= offset) break;
        offset = next;
      }
      if (ids.size() != expected.size()) {
        co_return probe_result{"data-missing", "FindItem listed " + std::to_string(ids.size()) + " items in " + folder +
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
      co_return co_await conn_.exchange_streaming(std::move(req), std::move(sink));
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (ntlm_connection_ == 0 || ntlm_connection_ != conn_.serial()) {
        // Authenticate this connection with a small request first; the large answer then streams.
        auto warm = co_await authenticated(soap_post(path, get_inbox_request, ""));
        if (auto* f = std::get_if<failure>(&warm)) co_return *f;
      }
      auto r = co_await conn_.exchange_streaming(req, sink);
      auto* res = std::get_if<response_t>(&r);
      if (res == nullptr || res->result() != http::status::unauthorized) co_return r;
      ntlm_connection_ = 0;
    }
    co_return failure{"auth-refused", "the server keeps refusing the NTLM-authenticated connection"};
  }

  static probe_result fail(const failure& f) { return {f.outcome, f.explanation}; }

  bool offers(std::string_view scheme) const { return scenario::offers(offered_, scheme); }

  /// Sends `req` with the step's credentials: Basic on every request; NTLM once per connection (the
  /// handshake authenticates the TCP connection, so later requests on it carry no Authorization).
  net::awaitable<std::variant<response_t, failure>> authenticated(http::request<http::string_body> req) {
    if (s_.auth != "ntlm") {
      req.set(http::field::authorization, basic_authorization(s_));
      auto r = co_await conn_.exchange(req);
      if (auto* res = std::get_if<response_t>(&r); res != nullptr && res->result() == http::status::unauthorized) {
        co_return failure{"auth-refused", "the server refused the Basic credentials of " + s_.email +
                                              "; check the migration endpoint's user name and password"};
      }
      co_return r;
    }
    if (ntlm_connection_ != 0 && ntlm_connection_ == conn_.serial()) {
      auto r = co_await conn_.exchange(req);
      auto* res = std::get_if<response_t>(&r);
      if (res == nullptr || res->result() != http::status::unauthorized) co_return r;
      // The server no longer knows this connection (a proxy moved us to another server connection):
      // authenticate again, as the migration service would.
    }
    co_return co_await ntlm_handshake(std::move(req));
  }

  net::awaitable<std::variant<response_t, failure>> ntlm_handshake(http::request<http::string_body> req) {
    auto r3 = co_await ntlm_exchange(conn_, std::move(req), s_);
    if (auto* f = std::get_if<failure>(&r3)) co_return *f;
    const auto& final_response = std::get<response_t>(r3);
    if (final_response.result() != http::status::unauthorized) {
      ntlm_connection_ = conn_.serial();
      co_return r3;
    }
    auto check = soap_post("/autodiscover/autodiscover.xml", autodiscover_request(s_.email), "");
    co_return co_await explain_ntlm_refusal(conn_, std::move(check), s_, offers("Basic"));
  }

  const client_settings& s_;
  exo_connection conn_;
  std::vector<std::string> offered_;
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
  for (unsigned i = 0; i < mailboxes; ++i) {
    client_settings one = base;
    one.email = expand_index(base.email, i + 1, mailboxes);
    one.password = expand_index(base.password, i + 1, mailboxes);
    one.show_progress = false;
    net::co_spawn(executor, run_migration_probe(std::move(one)),
                  [&results, &remaining, &all_done, i](std::exception_ptr e, probe_result r) {
                    results[i] = e ? probe_result{"bad-response", "the client failed unexpectedly"} : std::move(r);
                    if (--remaining == 0) all_done.cancel();
                  });
  }
  co_await all_done.async_wait(use_tuple);
  const double seconds = std::max(1e-3, std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
  std::uint64_t items = 0, bytes = 0;
  unsigned failed = 0;
  const probe_result* first_failure = nullptr;
  std::size_t first_index = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    items += results[i].items;
    bytes += results[i].bytes;
    if (results[i].outcome == "ok") continue;
    if (failed++ == 0) first_failure = &results[i], first_index = i;
  }
  if (first_failure != nullptr) {
    co_return probe_result{first_failure->outcome,
                           std::to_string(failed) + " of " + std::to_string(mailboxes) + " mailboxes failed; the first, " +
                               expand_index(base.email, static_cast<unsigned>(first_index + 1), mailboxes) + ": " +
                               first_failure->explanation};
  }
  std::string summary = std::to_string(mailboxes) + " mailboxes at once (" + base.auth + " auth): ";
  if (base.action == "migrate-mailbox") {
    summary += "migrated " + std::to_string(items) + " items (" + megabytes(bytes) + ") in " +
               std::to_string(static_cast<int>(seconds * 1000)) + " ms (" + megabytes_per_second(bytes, seconds) +
               "), every SHA-256 matched the manifest, every answer from its own mailbox";
  } else {
    summary += "every discovery and EWS read succeeded, every answer from its own mailbox";
  }
  probe_result all{"ok", std::move(summary)};
  all.items = items;
  all.bytes = bytes;
  co_return all;
}

net::awaitable<probe_result> run_migration_probe(client_settings s) {
  ssl::context tls = make_tls_context(tls_profile::exchange_online_client, {.verify = s.trust, .ca_file = s.ca_file});
  migration_probe probe(co_await net::this_coro::executor, tls, s);
  co_return co_await probe.run();
}

}  // namespace exbridge::scenario
