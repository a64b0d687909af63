// The Outlook Anywhere mailbox move (see oa_migration.hpp).
#include "rehearse/clients/oa_migration.hpp"

#include <boost/algorithm/string/predicate.hpp>

#include <set>

#include "common/dcerpc.hpp"
#include "rehearse/clients/emsmdb_codec.hpp"
#include "rehearse/clients/fx_item_hasher.hpp"
#include "rehearse/clients/mailbox_manifest.hpp"
#include "rehearse/clients/rpc_association.hpp"
#include "rehearse/clients/rpch_connection.hpp"
#include "rehearse/runner/progress.hpp"
#include "rehearse/runner/timeline.hpp"

namespace exbridge::rehearse {
namespace {

using emsmdb::rop_request;
using emsmdb::rop_reader;

const dcerpc::syntax_id emsmdb_interface{dcerpc::parse_uuid("a4f1db00-ca47-1067-b31f-00dd010662da"), 0, 81};
constexpr std::uint32_t no_handle = 0xFFFFFFFF;
constexpr std::uint16_t rows_per_query = 1000;

/// "5 hours" as Exchange Online says it; other limits as format_duration() does.
std::string hours(scaled_clock::duration d) {
  const auto whole = std::chrono::duration_cast<std::chrono::hours>(d);
  if (whole == d && whole.count() > 0) return std::to_string(whole.count()) + (whole.count() == 1 ? " hour" : " hours");
  return format_duration(d);
}

/// Where a move stands: the next folder and item to copy. Everything before it was verified.
struct cursor {
  std::size_t folder = 0;
  std::size_t item = 0;
};

/// One folder as the hierarchy walk found it.
struct found_folder {
  std::uint64_t id = 0;
  std::string name;
  std::uint64_t count = 0;
};

class mailbox_move {
 public:
  mailbox_move(const client_settings& s, const outlook_anywhere_endpoint& e, ssl::context& tls)
      : s_(s), endpoint_(e), tls_(tls) {
    rpc_settings_ = s;
    rpc_settings_.rpc_server = e.rpc_server;
  }

  net::awaitable<probe_result> run(const std::string& preamble) {
    manifest_ = load_manifest(s_.manifest_file, s_.email);
    const std::uint64_t total_items = item_count(manifest_), total_bytes = byte_count(manifest_);
    if (s_.show_progress) progress_.emplace("migrating " + s_.email + " (Outlook Anywhere)", total_items, total_bytes);
    meter_ = progress_ ? &*progress_ : s_.shared_progress.get();
    const auto begin = std::chrono::steady_clock::now();
    last_progress_ = scaled_clock::now();
    std::optional<failure> last;
    for (unsigned tries = 0;; ++tries) {
      ++virtual_connections_;
      last = co_await attempt();
      if (!last) break;
      if (!transient(*last)) co_return finish(*last, begin);
      const auto backoff = s_.backoff_base * (1u << std::min(tries, 5u));
      const auto stalled_for = scaled_clock::now() - last_progress_;
      if (stalled_for + backoff >= s_.no_progress_limit || (s_.retries != 0 && tries >= s_.retries)) {
        if (s_.retries != 0 && tries >= s_.retries && stalled_for + backoff < s_.no_progress_limit) {
          last->explanation += " (after " + std::to_string(tries) + " retries on new virtual connections)";
          co_return finish(*last, begin);
        }
        // Exchange Online gives up on a mailbox that has moved nothing for its limit (5 hours by default).
        timer wait(co_await net::this_coro::executor, s_.no_progress_limit - std::min(stalled_for, s_.no_progress_limit));
        co_await wait.async_wait(use_tuple);
        co_return finish({"migration-stalled",
                          "no email could be downloaded for " + hours(s_.no_progress_limit) + " (" +
                              std::to_string(items_) + " of " + std::to_string(total_items) + " items moved, " +
                              std::to_string(tries + 1) + " virtual connections tried; the last failure: " +
                              last->outcome + ": " + last->explanation + "); Exchange Online stops the mailbox "
                              "there: find what stalls the path (the proxy's log, its timeouts, the server)"},
                         begin);
      }
      ++retries_;
      retry_reasons_.insert(last->outcome);
      if (first_retry_.empty()) first_retry_ = last->outcome + ": " + last->explanation;
      timeline::current().instant(timeline_event::kind::failure, "retrying on a new virtual connection after " +
                                                                     last->outcome + ": " + last->explanation, 0, false);
      if (meter_ != nullptr) meter_->count("retries", 1);
      timer wait(co_await net::this_coro::executor, backoff);
      co_await wait.async_wait(use_tuple);
    }
    const double seconds = std::max(1e-3, std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    std::string text = preamble + "Outlook Anywhere (RPC over HTTP, " + tls_text_ + ", mailbox server " +
                       endpoint_.rpc_server + ", Exchange " + server_version_ + "): migrated " +
                       std::to_string(items_) + " items (" + megabytes(bytes_) + ") from " +
                       std::to_string(manifest_.size()) + " folders in " + std::to_string(static_cast<int>(seconds * 1000)) +
                       " ms (" + megabytes_per_second(bytes_, seconds) + ") by FastTransfer, every SHA-256 matched the manifest; " + channel_text();
    co_return finish({"ok", std::move(text)}, begin);
  }

 private:
  probe_result finish(const failure& f, std::chrono::steady_clock::time_point begin) {
    progress_.reset();
    probe_result r{f.outcome, f.explanation};
    r.items = items_;
    r.bytes = bytes_;
    const double seconds = std::max(1e-3, std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    r.metrics = {{"items", static_cast<double>(items_)},
                 {"bytes", static_cast<double>(bytes_)},
                 {"seconds", seconds},
                 {"in_channels_recycled", static_cast<double>(counters_.in_recycled)},
                 {"out_channels_recycled", static_cast<double>(counters_.out_recycled)},
                 {"flow_control_stalls", static_cast<double>(counters_.flow_stalls)},
                 {"retries", static_cast<double>(retries_)},
                 {"virtual_connections", static_cast<double>(virtual_connections_)}};
    if (f.outcome != "ok" && f.outcome != "migration-stalled" && items_ > 0) r.explanation += " (" + std::to_string(items_) + " items verified before)";
    return r;
  }

  std::string channel_text() const {
    std::string t = std::to_string(virtual_connections_) + " virtual connection" + (virtual_connections_ == 1 ? "" : "s") +
                    ", " + std::to_string(counters_.in_recycled) + " IN and " + std::to_string(counters_.out_recycled) +
                    " OUT channels recycled, " + std::to_string(counters_.flow_stalls) + " flow-control stalls";
    if (retries_ > 0) {
      std::string reasons;
      for (const auto& r : retry_reasons_) reasons += (reasons.empty() ? "" : ", ") + r;
      t += ", " + std::to_string(retries_) + (retries_ == 1 ? " retry" : " retries") + " after transient failures (" +
           reasons + "; the first: " + first_retry_ + ")";
    }
    return t;
  }

  /// One virtual connection's worth of the move: from the cursor to the end, or to a failure.
  net::awaitable<std::optional<failure>> attempt() {
    rpch_connection vc(co_await net::this_coro::executor, tls_, rpc_settings_, 6001, s_.in_channel_bytes);
    vc_ = &vc;
    auto result = co_await session(vc);
    vc.close();
    show_counts();
    counters_ += vc.counters();
    vc_ = nullptr;
    shown_ = {};
    co_return result;
  }

  /// What the current virtual connection did since the progress line last heard of it.
  void show_counts() {
    if (vc_ == nullptr) return;
    const auto& c = vc_->counters();
    if (meter_ != nullptr) {
      meter_->count("channels recycled", c.in_recycled + c.out_recycled - shown_.in_recycled - shown_.out_recycled);
      meter_->count("flow-control stalls", c.flow_stalls - shown_.flow_stalls);
    }
    shown_ = c;
  }

  net::awaitable<std::optional<failure>> session(rpch_connection& vc) {
    if (auto f = co_await vc.open()) co_return f;
    tls_text_ = vc.tls_description();
    rpc_association rpc(vc, rpc_settings_);
    if (auto f = co_await rpc.bind(emsmdb_interface)) co_return f;

    // EcDoConnectEx opens the store session for the mailbox's legacy DN.
    auto connect = co_await rpc.call(emsmdb::op_connect_ex, emsmdb::connect_ex_request(endpoint_.legacy_dn), s_.request_timeout);
    if (auto* f = std::get_if<failure>(&connect)) co_return refine(*f, "EcDoConnectEx");
    if (auto f = open_session(std::get<std::string>(connect))) co_return f;

    // RopLogon to the private mailbox: its special folders' IDs.
    rop_request logon;
    logon.logon(0, endpoint_.legacy_dn);
    // (Handle tables as named vectors: GCC 12 cannot hold an initializer list across a co_await.)
    const std::vector<std::uint32_t> logon_slots{no_handle};
    auto logged = co_await rops(rpc, logon, logon_slots);
    if (auto* f = std::get_if<failure>(&logged)) co_return *f;
    std::uint64_t ipm_subtree = 0;
    if (auto f = read_logon(std::get<emsmdb::rpc_ext2_reply>(logged).rops, ipm_subtree)) co_return f;
    const std::uint32_t logon_handle = std::get<emsmdb::rpc_ext2_reply>(logged).handles.at(0);
    std::uint32_t ec = 0;

    // The IPM subtree's whole hierarchy; each manifest folder must be there with its item count.
    rop_request walk;
    const std::vector<std::uint32_t> walk_columns{mapi::tag::folder_id, mapi::tag::display_name, mapi::tag::content_count};
    walk.open_folder(0, 1, ipm_subtree).hierarchy_table(1, 2, true).set_columns(2, walk_columns).query_rows(2, rows_per_query);
    std::vector<found_folder> folders;
    const std::vector<std::uint32_t> walk_slots{logon_handle, no_handle, no_handle};
    auto walked = co_await rops(rpc, walk, walk_slots);
    if (auto* f = std::get_if<failure>(&walked)) co_return *f;
    {
      rop_reader wr(std::get<emsmdb::rpc_ext2_reply>(walked).rops);
      std::optional<emsmdb::rows_reply> rows;
      if (wr.open_folder(ec) && ec == 0 && wr.table(ec) && ec == 0 && wr.set_columns(ec) && ec == 0) {
        rows = wr.query_rows(walk_columns, ec);
      }
      if (!rows || ec != 0) co_return rop_failure(wr, ec, "the folder hierarchy walk");
      for (const auto& row : rows->rows) {
        found_folder f;
        if (row[0]) f.id = std::get<std::uint64_t>(*row[0]);
        if (row[1]) f.name = std::get<std::string>(*row[1]);
        if (row[2]) f.count = std::get<std::uint64_t>(*row[2]);
        folders.push_back(std::move(f));
      }
    }

    for (; at_.folder < manifest_.size(); ++at_.folder, at_.item = 0) {
      const auto& want = manifest_[at_.folder];
      const auto found = std::find_if(folders.begin(), folders.end(), [&](const found_folder& f) {
        return boost::algorithm::iequals(f.name, want.name.empty() ? want.id : want.name);
      });
      if (found == folders.end()) {
        co_return failure{"data-missing", "the folder hierarchy has no folder \"" + want.name + "\" (" +
                                              std::to_string(folders.size()) + " folders listed)"};
      }
      if (found->count != want.items.size()) {
        co_return failure{"data-missing", "folder \"" + want.name + "\" holds " + std::to_string(found->count) +
                                              " items where the manifest has " + std::to_string(want.items.size())};
      }
      if (auto f = co_await copy_folder(rpc, logon_handle, *found, want)) co_return f;
    }
    auto bye = co_await rpc.call(emsmdb::op_disconnect, emsmdb::disconnect_request(handle_), s_.request_timeout);
    if (auto* f = std::get_if<failure>(&bye)) co_return refine(*f, "EcDoDisconnect");
    co_return std::nullopt;
  }

  /// EcDoConnectEx's answer: the session's handle and the server's version. (Not in a coroutine: GCC 12 cannot
  /// keep a std::array local in a coroutine frame.)
  std::optional<failure> open_session(const std::string& stub) {
    const auto session = emsmdb::read_connect_ex(stub);
    if (!session) return failure{"bad-response", "EcDoConnectEx's answer does not parse"};
    if (session->ec != 0) {
      return failure{"auth-refused", "EcDoConnectEx for " + endpoint_.legacy_dn + " answered " +
                                         emsmdb::ec_name(session->ec) + ": the migration account cannot open this "
                                         "mailbox (check its legacy DN and the account's rights)"};
    }
    server_version_ = emsmdb::version_text(session->server_version);
    handle_ = session->handle;
    return std::nullopt;
  }

  /// RopLogon's answer: the IPM subtree's folder ID.
  std::optional<failure> read_logon(const std::string& rops, std::uint64_t& ipm_subtree) const {
    rop_reader r(rops);
    std::uint32_t ec = 0;
    const auto reply = r.logon(ec);
    if (!reply || ec != 0) return rop_failure(r, ec, "RopLogon to " + s_.email + "'s mailbox");
    ipm_subtree = reply->folders[3];
    return std::nullopt;
  }

  /// Lists the folder's messages, then copies each from the cursor on.
  net::awaitable<std::optional<failure>> copy_folder(rpc_association& rpc, std::uint32_t logon_handle,
                                                     const found_folder& folder, const expected_folder& want) {
    const std::vector<std::uint32_t> columns{mapi::tag::mid, mapi::tag::message_size};
    std::vector<std::uint64_t> mids;
    std::vector<std::uint32_t> handles{logon_handle, no_handle, no_handle};
    rop_request list;
    list.open_folder(0, 1, folder.id).contents_table(1, 2).set_columns(2, columns).query_rows(2, rows_per_query);
    for (bool first = true;; first = false) {
      auto answer = co_await rops(rpc, list, handles);
      if (auto* f = std::get_if<failure>(&answer)) co_return *f;
      auto& reply = std::get<emsmdb::rpc_ext2_reply>(answer);
      rop_reader r(reply.rops);
      std::uint32_t ec = 0;
      std::optional<emsmdb::rows_reply> rows;
      if (!first || (r.open_folder(ec) && ec == 0 && r.table(ec) && ec == 0 && r.set_columns(ec) && ec == 0)) {
        rows = r.query_rows(columns, ec);
      }
      if (!rows || ec != 0) co_return rop_failure(r, ec, "listing folder \"" + want.name + "\"");
      for (const auto& row : rows->rows) mids.push_back(row[0] ? std::get<std::uint64_t>(*row[0]) : 0);
      if (first) handles = reply.handles;
      if (rows->at_end || rows->rows.empty()) break;
      list = rop_request();
      list.query_rows(2, rows_per_query);
    }
    if (auto f = co_await release(rpc, handles)) co_return f;
    if (mids.size() != want.items.size()) {
      co_return failure{"data-missing", "the contents table of \"" + want.name + "\" listed " + std::to_string(mids.size()) +
                                            " messages where the manifest has " + std::to_string(want.items.size())};
    }
    for (; at_.item < mids.size(); ++at_.item) {
      if (auto f = co_await copy_message(rpc, logon_handle, folder, mids[at_.item], want, want.items[at_.item])) co_return f;
    }
    co_return std::nullopt;
  }

  /// RopOpenMessage, RopFastTransferSourceCopyTo and the first RopFastTransferSourceGetBuffer in one call, then
  /// GetBuffer until the stream is Done, then RopRelease of both objects.
  net::awaitable<std::optional<failure>> copy_message(rpc_association& rpc, std::uint32_t logon_handle,
                                                      const found_folder& folder, std::uint64_t mid,
                                                      const expected_folder& want, const expected_item& item) {
    fx_item_hasher hasher;
    std::vector<std::uint32_t> handles{logon_handle, no_handle, no_handle};
    rop_request request;
    request.open_message(0, 1, folder.id, mid).copy_to(1, 2).get_buffer(2);
    const std::string where = "item " + std::to_string(at_.item + 1) + " of \"" + want.name + "\"";
    for (bool first = true;; first = false) {
      auto answer = co_await rops(rpc, request, handles);
      if (auto* f = std::get_if<failure>(&answer)) co_return *f;
      auto& reply = std::get<emsmdb::rpc_ext2_reply>(answer);
      rop_reader r(reply.rops);
      std::uint32_t ec = 0;
      std::optional<emsmdb::buffer_reply> piece;
      if (!first || (r.open_message(ec) && ec == 0 && r.copy_to(ec) && ec == 0)) piece = r.get_buffer(ec);
      if (!piece || ec != 0 || piece->status == emsmdb::transfer_status::error) {
        co_return rop_failure(r, ec, "copying " + where);
      }
      if (first) handles = reply.handles;
      if (!hasher.feed(piece->data)) {
        co_return failure{"data-corruption", where + ": " + hasher.error()};
      }
      if (piece->status == emsmdb::transfer_status::done) break;
      request = rop_request();
      request.get_buffer(2);
    }
    if (auto f = co_await release(rpc, handles)) co_return f;
    if (!hasher.finish()) co_return failure{"data-corruption", where + ": " + hasher.error()};
    if (hasher.sha256_hex() != item.sha256 || hasher.size() != item.size) {
      co_return failure{"data-corruption", where + " (" + item.id + "): rebuilt " + std::to_string(hasher.size()) +
                                               " bytes with SHA-256 " + hasher.sha256_hex().substr(0, 16) +
                                               "..., the manifest says " + std::to_string(item.size) + " bytes, " +
                                               item.sha256.substr(0, 16) + "..."};
    }
    ++items_;
    bytes_ += item.size;
    last_progress_ = scaled_clock::now();
    show_counts();
    if (meter_ != nullptr) {
      if (progress_) meter_->update(items_, bytes_);
      else meter_->advance(1, item.size);
    }
    co_return std::nullopt;
  }

  /// RopRelease of the objects in slots 2 and 1 (a table and its folder, or a download and its message).
  net::awaitable<std::optional<failure>> release(rpc_association& rpc, const std::vector<std::uint32_t>& handles) {
    rop_request request;
    request.release(2).release(1);
    auto released = co_await rops(rpc, request, handles);
    if (auto* f = std::get_if<failure>(&released)) co_return *f;
    co_return std::nullopt;
  }

  /// One EcDoRpcExt2 call with `request`'s ROPs and `handles`.
  net::awaitable<std::variant<emsmdb::rpc_ext2_reply, failure>> rops(rpc_association& rpc, rop_request& request,
                                                                     const std::vector<std::uint32_t>& handles) {
    auto answer = co_await rpc.call(emsmdb::op_rpc_ext2, emsmdb::rpc_ext2_request(handle_, request.finish(handles)),
                                    s_.read_write_timeout);
    if (auto* f = std::get_if<failure>(&answer)) co_return refine(*f, "EcDoRpcExt2");
    std::string why;
    auto reply = emsmdb::read_rpc_ext2(std::get<std::string>(answer), &why);
    if (!reply) co_return failure{"bad-response", why};
    if (reply->ec != 0) {
      co_return failure{"bad-response", "EcDoRpcExt2 answered " + emsmdb::ec_name(reply->ec) + " for the whole ROP buffer"};
    }
    co_return std::move(*reply);
  }

  static failure rop_failure(const rop_reader& r, std::uint32_t ec, const std::string& doing) {
    if (!r.ok()) return {"bad-response", doing + ": " + r.error()};
    return {"bad-response", doing + " answered " + emsmdb::ec_name(ec)};
  }

  /// An RPC fault named for the call it answered.
  static failure refine(failure f, const char* call) {
    if (f.outcome == "rpc-fault") {
      f.outcome = "bad-response";
      f.explanation = std::string(call) + ": " + f.explanation;
    }
    return f;
  }

  const client_settings& s_;
  client_settings rpc_settings_;  ///< s_, with the mailbox server Autodiscover named
  const outlook_anywhere_endpoint& endpoint_;
  ssl::context& tls_;
  std::vector<expected_folder> manifest_;
  std::optional<progress_meter> progress_;
  progress_meter* meter_ = nullptr;
  emsmdb::context_handle handle_{};
  cursor at_;
  std::uint64_t items_ = 0, bytes_ = 0;
  scaled_clock::time_point last_progress_{};
  rpch_counters counters_;      ///< of the virtual connections that ended
  rpch_connection* vc_ = nullptr;  ///< the current one
  rpch_counters shown_;         ///< its counts the progress line has
  unsigned virtual_connections_ = 0;
  unsigned retries_ = 0;
  std::set<std::string> retry_reasons_;
  std::string first_retry_;  ///< the first transient failure, explained
  std::string tls_text_;
  std::string server_version_ = "?";
};

/// Autodiscover's Outlook Anywhere settings, checked as the migration service needs them.
std::optional<probe_result> unusable(const client_settings& s, const outlook_anywhere_endpoint& endpoint) {
  if (!boost::algorithm::iequals(endpoint.proxy_server, s.server_name)) {
    return probe_result{"bad-response", "Autodiscover's Outlook Anywhere settings (EXPR) name the RPC proxy " +
                                            (endpoint.proxy_server.empty() ? std::string("nowhere") : endpoint.proxy_server) +
                                            ", not the public name " + s.server_name + "; set Outlook Anywhere's "
                                            "ExternalHostname to it (Set-OutlookAnywhere -ExternalHostname)"};
  }
  if (endpoint.rpc_server.empty() || endpoint.legacy_dn.empty()) {
    return probe_result{"bad-response", "Autodiscover named no mailbox server (EXCH <Server>) or no legacy DN for " +
                                            s.email + "; the migration cannot open the mailbox over Outlook Anywhere"};
  }
  return std::nullopt;
}

}  // namespace

net::awaitable<probe_result> check_outlook_anywhere_session(const client_settings& s,
                                                            const outlook_anywhere_endpoint& endpoint,
                                                            const std::string& preamble) {
  if (auto refused = unusable(s, endpoint)) co_return *refused;
  ssl::context tls = make_tls_context(tls_profile::exchange_online_client, {.verify = s.trust, .ca_file = s.ca_file});
  client_settings rpc_settings = s;
  rpc_settings.rpc_server = endpoint.rpc_server;
  rpch_connection vc(co_await net::this_coro::executor, tls, rpc_settings, 6001, s.in_channel_bytes);
  const auto fail = [](const failure& f) { return probe_result{f.outcome, f.explanation}; };
  if (auto f = co_await vc.open()) co_return fail(*f);
  rpc_association rpc(vc, rpc_settings);
  if (auto f = co_await rpc.bind(emsmdb_interface)) co_return fail(*f);
  auto connect = co_await rpc.call(emsmdb::op_connect_ex, emsmdb::connect_ex_request(endpoint.legacy_dn), s.request_timeout);
  if (auto* f = std::get_if<failure>(&connect)) co_return fail(*f);
  std::string session_text;
  {
    const auto session = emsmdb::read_connect_ex(std::get<std::string>(connect));
    if (!session) co_return probe_result{"bad-response", "EcDoConnectEx's answer does not parse"};
    if (session->ec != 0) {
      co_return probe_result{"auth-refused", "EcDoConnectEx for " + endpoint.legacy_dn + " answered " +
                                                 emsmdb::ec_name(session->ec) + ": the migration account cannot open "
                                                 "this mailbox over Outlook Anywhere"};
    }
    session_text = "EcDoConnectEx answered ecNone for \"" + session->display_name + "\" (Exchange " +
                   emsmdb::version_text(session->server_version) + ")";
    auto bye = co_await rpc.call(emsmdb::op_disconnect, emsmdb::disconnect_request(session->handle), s.request_timeout);
    if (auto* f = std::get_if<failure>(&bye)) co_return fail(*f);
  }
  std::string text = preamble + "virtual connection to " + endpoint.rpc_server + ":6001 (" + vc.tls_description() +
                     "), EMSMDB bound with NTLM at PKT_PRIVACY, " + session_text + ", EcDoDisconnect";
  if (s.idle > scaled_clock::duration::zero()) {
    if (auto f = co_await vc.hold(s.idle)) {
      co_return probe_result{f->outcome, "the virtual connection closed during the " + format_duration(s.idle) +
                                             " hold after " + std::to_string(vc.counters().pings) +
                                             " server ping(s): " + f->explanation};
    }
    text += "; held " + format_duration(s.idle) + ": " + std::to_string(vc.counters().pings) + " server ping(s)";
    if (vc.counters().pings == 0 && s.idle > std::chrono::seconds(900)) {
      text += " -- none in " + format_duration(s.idle) + ", though Exchange pings every 900 s: something between "
              "swallows them";
    }
  }
  vc.close();
  co_return probe_result{"ok", text};
}

net::awaitable<probe_result> migrate_over_outlook_anywhere(const client_settings& s,
                                                           const outlook_anywhere_endpoint& endpoint,
                                                           const std::string& preamble) {
  if (auto refused = unusable(s, endpoint)) co_return *refused;
  ssl::context tls = make_tls_context(tls_profile::exchange_online_client, {.verify = s.trust, .ca_file = s.ca_file});
  mailbox_move move(s, endpoint, tls);
  co_return co_await move.run(preamble);
}

}  // namespace exbridge::rehearse
