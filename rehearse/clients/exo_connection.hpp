// The client side of one Exchange Online connection, shared by every client rehearse plays (the EWS
// migration client and the Outlook Anywhere client): TLS 1.2+ with the Office 365 suites, SNI, chain and
// host-name checks, keep-alive request/response exchanges, and -- for Outlook Anywhere's long-lived
// channels -- a request header followed by body bytes streamed at will and a response read incrementally.
// Failures are values (`failure`: an outcome name and one sentence), never exceptions.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "common/net.hpp"
#include "common/tls_context.hpp"
#include "common/watchdog.hpp"

namespace exbridge::rehearse {

class progress_meter;

struct client_settings {
  std::string host;             ///< where the public name resolves to in this rehearsal
  unsigned short port = 443;
  std::string server_name;      ///< the public host name (SNI, certificate check, Host header)
  tls_verify trust = tls_verify::ca_file;
  std::string ca_file;          ///< with tls_verify::ca_file
  std::string email;
  std::string password;
  std::string auth = "basic";   ///< "basic" or "ntlm"
  /// Autodiscover: "public-name" asks https://<server_name>/autodiscover/autodiscover.xml only; "domain" tries
  /// the candidate URLs of the address's domain in order and follows at most 10 redirects, as Exchange Online
  /// does (https://<domain>, https://autodiscover.<domain>, then a GET to http://autodiscover.<domain>).
  std::string autodiscover = "public-name";
  std::string autodiscover_email;  ///< the address Autodiscover is asked about (empty: `email`)
  /// Where host names point in this rehearsal: "name" -> "HOST:PORT" for https://name, "name:80" for
  /// http://name. Other https names go to host:port; other http names are not reachable.
  std::map<std::string, std::string> resolve;
  std::string ntlm_domain;      ///< NTLM: empty = log on with the e-mail address as UPN
  unsigned ews_requests = 1;    ///< how many EWS reads after discovery (identity checked on each)
  /// "migration-probe", "migrate-mailbox" (move every item), "outlook-anywhere" (hold RPC channels idle) or
  /// "outlook-anywhere-session" (preflight: one read-only EMSMDB session)
  std::string action = "migration-probe";
  std::string manifest_file;   ///< migrate-mailbox: fake-exchange's manifest (JSON)
  unsigned page_size = 512;    ///< FindItem page size / SyncFolderItems MaxChangesReturned (the service uses 512)
  std::string listing = "find-item";  ///< migrate-mailbox: "find-item" or "sync-folder-items" lists each folder
  unsigned batch = 10;         ///< GetItem: small items per request
  std::string rpc_server = "ex2007.contoso.example";  ///< outlook-anywhere: the mailbox server behind rpcproxy.dll
  scaled_clock::duration idle = std::chrono::minutes(30);           ///< outlook-anywhere: how long channels idle
  scaled_clock::duration ping_interval = std::chrono::minutes(12);  ///< outlook-anywhere: client keep-alive (720 s)
  scaled_clock::duration connect_timeout = std::chrono::seconds(30);
  scaled_clock::duration request_timeout = std::chrono::seconds(100);     ///< the migration service's per-request limit
  scaled_clock::duration read_write_timeout = std::chrono::seconds(300);  ///< .NET ReadWriteTimeout: one read or write
  /// migrate-mailbox: how often a GetItem batch that failed transiently (reset, timeout, 5xx) is retried on a
  /// new connection, after back-off_base, then twice that, ... (0 = report the first failure)
  unsigned retries = 0;
  bool show_progress = true;   ///< migrate-mailbox: the progress line (off when several mailboxes run at once)
  /// Several mailboxes at once: the one meter they all advance (items and bytes of every mailbox together).
  std::shared_ptr<progress_meter> shared_progress;
  scaled_clock::duration backoff_base = std::chrono::seconds(30);
  /// migrate-mailbox: "outlook-anywhere" (RPC over HTTP, as Exchange Online moves 2007 mailboxes) or "ews"
  std::string transport = "outlook-anywhere";
  /// outlook-anywhere migration: a mailbox with no item copied for this long fails, as Exchange Online reports
  /// "no email could be downloaded" after 5 hours
  scaled_clock::duration no_progress_limit = std::chrono::hours(5);
  std::uint64_t in_channel_bytes = 1'073'741'824;  ///< outlook-anywhere: the IN channel's declared length
};

struct probe_result {
  std::string outcome = "ok";  ///< "ok" or a failure class (scenario_file.hpp: known_outcomes)
  std::string explanation;     ///< one sentence: what happened, and for failures the likely fix
  std::uint64_t items = 0;     ///< migrate-mailbox: items moved and verified
  std::uint64_t bytes = 0;     ///< migrate-mailbox: their MIME bytes
  /// migrate-mailbox: what the reports show beside the outcome (items, bytes, MB/s, channels recycled,
  /// flow-control stalls, retries, virtual connections), by name.
  std::map<std::string, double> metrics;
};

struct failure {
  std::string outcome;
  std::string explanation;
  unsigned http_status = 0;  ///< the HTTP status that caused it, when one did (a 4xx is no reason to retry)
};

using response_t = http::response<http::string_body>;

enum class client_timeout { connect, request, read_write };

/// One keep-alive TLS connection of an Exchange Online client.
class exo_connection {
 public:
  exo_connection(net::any_io_executor ex, ssl::context& tls, const client_settings& s);

  /// Connects and handshakes if not connected. Returns a failure when that is impossible.
  net::awaitable<std::optional<failure>> ensure_connected();

  /// Sends one request and reads the response (the connection is reused when both sides allow it).
  /// A request without a User-Agent gets the migration service's.
  net::awaitable<std::variant<response_t, failure>> exchange(http::request<http::string_body> req);

  /// Like exchange(), but every body byte also goes to `sink` as it arrives, and the returned response
  /// keeps only the first 64 KiB of the body (enough to explain an error): large items stream through.
  using body_sink = std::function<void(const char*, std::size_t)>;
  net::awaitable<std::variant<response_t, failure>> exchange_streaming(http::request<http::string_body> req,
                                                                       body_sink sink);

  // Long-lived requests (Outlook Anywhere channels): the caller owns the framing.

  /// Writes `req`'s header exactly as given (its Content-Length may declare far more than will ever be
  /// sent, as an RPC IN channel's 1 GB does), then `body_start` as raw body bytes.
  net::awaitable<std::optional<failure>> send_header(const http::request<http::empty_body>& req,
                                                     std::string_view body_start);
  /// Sends more raw body bytes of the request opened by send_header(), within the read/write timeout.
  net::awaitable<error_code> send_body(std::string_view bytes);
  /// Reads a response header into `parser` within the request timeout.
  net::awaitable<std::optional<failure>> read_header(http::response_parser<http::buffer_body>& parser);
  /// Reads whatever body bytes come next (no timeout: an idle channel may wait for many minutes).
  net::awaitable<std::pair<error_code, std::size_t>> read_body(http::response_parser<http::buffer_body>& parser,
                                                               char* data, std::size_t size);
  /// Reads raw bytes of whatever the server sends next, unparsed (no timeout).
  net::awaitable<std::pair<error_code, std::size_t>> read_raw(char* data, std::size_t size);

  const std::string& tls_description() const { return tls_description_; }
  /// Counts TCP connections made; NTLM state is valid only while it stays the same.
  unsigned serial() const { return serial_; }
  void close();
  ~exo_connection();
  exo_connection(const exo_connection&) = delete;
  exo_connection& operator=(const exo_connection&) = delete;

 private:
  std::optional<failure> io_failure(error_code ec, const char* doing);
  /// Puts this connection's lifetime on the scenario timeline (once per TCP connection).
  void record_connection_end();
  /// Puts a failure on the timeline, on this connection's row.
  const failure& record(const failure& f);

  const client_settings& settings_;
  ssl::context& tls_;
  net::any_io_executor executor_;
  std::optional<ssl::stream<tcp::socket>> stream_;
  beast::flat_buffer buffer_;
  watchdog<client_timeout> dog_;
  std::string tls_description_;
  unsigned serial_ = 0;
  unsigned lane_ = 0;        ///< this TCP connection's row on the timeline
  double opened_ms_ = -1;    ///< when it was opened (timeline time); < 0 when not open
};

/// Failures a migration retries on a new connection: the path or the server had a moment, not a verdict. A 4xx
/// is a verdict.
bool transient(const failure& f);

/// "37.2 MB" and "26.4 MB/s", as the reports write sizes and rates.
std::string megabytes(std::uint64_t bytes);
std::string megabytes_per_second(std::uint64_t bytes, double seconds);

/// "Basic base64(email:password)".
std::string basic_authorization(const client_settings& s);

/// A non-success HTTP answer, explained. A proxy's own error page (exbridge's "exbridge: ..." text) is
/// reported as a proxy error, with the proxy's reason.
failure http_failure(const response_t& res, const std::string& what);

/// The reason in a proxy's own error page ("exbridge: <reason>..." first line, or HAProxy's <h1>), or "".
std::string proxy_reason(const std::string& body);

/// The schemes a 401 offers, one per WWW-Authenticate header ("Negotiate", "NTLM", "Basic").
std::vector<std::string> offered_schemes(const response_t& challenge);

/// Whether `offered` (from offered_schemes) contains `scheme`, case-insensitively.
bool offers(const std::vector<std::string>& offered, std::string_view scheme);

/// NTLM on one connection: `req` goes out with a Type 1 message, the 401's challenge is answered by the
/// same request with a Type 3 message. Returns the final response (a 401 when the server refused the
/// credentials) or a failure (the connection closed after the challenge: ntlm-connection-broken).
net::awaitable<std::variant<response_t, failure>> ntlm_exchange(exo_connection& conn,
                                                                 http::request<http::string_body> req,
                                                                 const client_settings& s);

/// After the server refused an NTLM logon: wrong password, or a proxy that sent the Type 3 message over
/// another server connection than the challenge? When Basic is offered, `check` (a request that succeeds
/// with valid credentials) goes out with Basic: the same password working there means the proxy broke NTLM
/// (ntlm-connection-broken); otherwise auth-refused.
net::awaitable<failure> explain_ntlm_refusal(exo_connection& conn, http::request<http::string_body> check,
                                             const client_settings& s, bool basic_offered);

}  // namespace exbridge::rehearse
