// The bridge fixtures' coroutines (see bridge_fixture.hpp), compiled once for every test that uses them.
#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy::test {

template <bool is_request>
net::awaitable<error_code> write_pattern_body(tls_stream& stream, http::message<is_request, http::buffer_body>& msg,
                                             http::serializer<is_request, http::buffer_body>& sr, std::uint64_t size) {
  std::vector<char> chunk(64 * 1024);
  for (std::uint64_t sent = 0; sent < size || !sr.is_done();) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - sent));
    for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern_byte(sent + i);
    sent += n;
    msg.body().data = n > 0 ? chunk.data() : nullptr;
    msg.body().size = n;
    msg.body().more = sent < size;
    auto [ec, written] = co_await http::async_write(stream, sr, use_tuple);
    if (ec && ec != http::error::need_buffer) co_return ec;
    if (n == 0 && !sr.is_done()) co_return http::error::partial_message;
  }
  co_return error_code{};
}

template net::awaitable<error_code> write_pattern_body<true>(tls_stream&, http::request<http::buffer_body>&,
                                                               http::request_serializer<http::buffer_body>&, std::uint64_t);
template net::awaitable<error_code> write_pattern_body<false>(tls_stream&, http::response<http::buffer_body>&,
                                                                http::response_serializer<http::buffer_body>&, std::uint64_t);

tls10_listener::tls10_listener(net::io_context& ioc, handler serve)
    : tls_(make_tls_context(tls_profile::exchange2007,
                            {.identity = {.cert_file = test_pki().exchange_cert.string(),
                                          .key_file = test_pki().exchange_key.string()}})),
      acceptor_(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
      serve_(std::move(serve)) {
  net::co_spawn(ioc, accept_loop(), net::detached);
}

net::awaitable<void> tls10_listener::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
    if (ec) co_return;
    ++connections_;
    net::co_spawn(acceptor_.get_executor(), serve_(tls_stream(std::move(socket), tls_)), net::detached);
  }
}

net::awaitable<void> test_upstream::hold(tls_stream& stream, std::vector<char>& chunk) {
  for (;;) {
    if (auto [ec, n] = co_await stream.async_read_some(net::buffer(chunk), use_tuple); ec) co_return;
  }
}

net::awaitable<void> test_upstream::serve(tls_stream stream) {
  if (auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple); ec) co_return;
  beast::flat_buffer buffer;
  std::vector<char> chunk(64 * 1024);
  for (;;) {
    http::request_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple); ec) co_return;
    ++requests_;
    const std::string target(parser.get().target());
    if (target == "/noread") {
      net::steady_timer forever(stream.get_executor(), std::chrono::hours(1));
      co_await forever.async_wait(use_tuple);
      co_return;
    }
    if (target == "/reject") {
      const std::string refusal = "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      co_await net::async_write(stream, net::buffer(refusal), use_tuple);
      co_await stream.async_shutdown(use_tuple);
      co_return;
    }
    if (target == "/early") {  // a keep-alive answer at once; the body it did not wait for is read after
      const std::string early = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly";
      if (auto [ec, n] = co_await net::async_write(stream, net::buffer(early), use_tuple); ec) co_return;
    }
    if (target == "/continue" && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      const std::string go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await net::async_write(stream, net::buffer(go_on), use_tuple);
    }
    std::uint64_t received = 0;
    bool intact = true;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (ec && ec != http::error::need_buffer) co_return;
      const std::size_t got = chunk.size() - parser.get().body().size;
      for (std::size_t i = 0; i < got; ++i) intact &= chunk[i] == pattern_byte(received + i);
      received += got;
    }
    if (target == "/stall") {
      co_await hold(stream, chunk);
      co_return;
    }
    if (target == "/close") co_return;
    if (target == "/early") continue;
    if (target.rfind("/big/", 0) == 0) {
      const bool chunked = target.find("?chunked") != std::string::npos;
      const std::uint64_t size = std::stoull(target.substr(5));
      http::response<http::buffer_body> res{http::status::ok, 11};
      if (chunked) res.chunked(true);
      else res.content_length(size);
      http::response_serializer<http::buffer_body> sr{res};
      if (auto [ec, n] = co_await http::async_write_header(stream, sr, use_tuple); ec) co_return;
      if (auto ec = co_await write_pattern_body(stream, res, sr, size); ec) co_return;
      continue;
    }
    if (const auto at = target.find("/partial/"); at != std::string::npos) {
      const std::uint64_t size = std::stoull(target.substr(at + 9));
      const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n";
      const std::string half(size / 2, 'x');
      co_await net::async_write(stream, net::buffer(head), use_tuple);
      co_await net::async_write(stream, net::buffer(half), use_tuple);
      co_await hold(stream, chunk);
      co_return;
    }
    if (target.rfind("/trickle/", 0) == 0) {
      const std::uint64_t size = std::stoull(target.substr(9));
      const auto every = std::chrono::milliseconds(std::stoi(target.substr(target.find("every=") + 6)));
      const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n";
      if (auto [ec, n] = co_await net::async_write(stream, net::buffer(head), use_tuple); ec) co_return;
      net::steady_timer pause(stream.get_executor());
      for (std::uint64_t sent = 0; sent < size;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(1024, size - sent));
        for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern_byte(sent + i);
        if (auto [ec, w] = co_await net::async_write(stream, net::buffer(chunk.data(), n), use_tuple); ec) co_return;
        sent += n;
        pause.expires_after(every);
        co_await pause.async_wait(use_tuple);
      }
      continue;
    }
    http::response<http::string_body> res{http::status::ok, 11};
    const auto& req = parser.get();
    if (target == "/upload" || target == "/continue") {
      res.body() = "bytes=" + std::to_string(received) + (intact ? " ok" : " corrupt");
    } else {
      for (const char* name : {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port", "Via", "X-Custom-Case"}) {
        if (req.find(name) != req.end()) res.body() += std::string(name) + ": " + std::string(req[name]) + "\n";
      }
    }
    if (target == "/last") res.keep_alive(false);
    res.prepare_payload();
    if (auto [ec, n] = co_await http::async_write(stream, res, use_tuple); ec) co_return;
    if (!res.keep_alive()) {
      co_await stream.async_shutdown(use_tuple);
      co_return;
    }
  }
}

client::client(net::io_context& ioc)
    : tls_(make_tls_context(tls_profile::exchange_online_client,
                            {.verify = tls_verify::ca_file, .ca_file = test_pki().ca_cert.string()})),
      stream_(ioc, tls_) {}

net::awaitable<error_code> client::connect(unsigned short port, std::string name,
                                   SSL_SESSION* resume) {
  auto [ec] = co_await stream_.next_layer().async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                                                            use_tuple);
  if (ec) co_return ec;
  prepare_client_tls(stream_.native_handle(), name, true);
  if (resume != nullptr) SSL_set_session(stream_.native_handle(), resume);
  auto [hec] = co_await stream_.async_handshake(ssl::stream_base::client, use_tuple);
  co_return hec;
}

net::awaitable<http::response<http::string_body>> client::read_response() {
  http::response<http::string_body> res;
  co_await http::async_read(stream_, buffer_, res, net::use_awaitable);
  co_return res;
}

net::awaitable<error_code> client::connect_from(const std::string& source, unsigned short port) {
  auto& socket = stream_.next_layer();
  error_code ec;
  socket.open(tcp::v4(), ec);
  if (!ec) socket.bind(tcp::endpoint(net::ip::make_address(source), 0), ec);
  if (ec) co_return ec;
  co_return co_await connect(port);
}

net::awaitable<client::reply> client::request(const std::string& target, std::uint64_t upload, bool chunked_upload,
                              std::vector<std::pair<std::string, std::string>> headers,
                              std::string method) {
  reply r;
  std::vector<char> chunk(64 * 1024);
  http::request<http::buffer_body> req{upload > 0 ? http::verb::post : http::verb::get, target, 11};
  if (!method.empty()) req.method_string(method);  // e.g. RPC_IN_DATA, a method Beast does not know
  req.set(http::field::host, "mail.contoso.example");
  for (const auto& [k, v] : headers) req.insert(k, v);
  if (chunked_upload) req.chunked(true);
  else if (upload > 0) req.content_length(upload);
  http::request_serializer<http::buffer_body> sr{req};
  std::tie(r.ec, std::ignore) = co_await http::async_write_header(stream_, sr, use_tuple);
  if (!r.ec) r.ec = co_await write_pattern_body(stream_, req, sr, upload);
  if (r.ec) co_return r;

  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  std::tie(r.ec, std::ignore) = co_await http::async_read_header(stream_, buffer_, parser, use_tuple);
  if (r.ec) co_return r;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [ec, n] = co_await http::async_read(stream_, buffer_, parser, use_tuple);
    const std::size_t got = chunk.size() - parser.get().body().size;  // counted even when the read failed
    for (std::size_t i = 0; i < got; ++i) r.pattern_ok &= chunk[i] == pattern_byte(r.body_bytes + i);
    if (r.body.size() < 4096) r.body.append(chunk.data(), std::min<std::size_t>(got, 4096));
    r.body_bytes += got;
    if (ec && ec != http::error::need_buffer) {
      r.ec = ec;
      co_return r;
    }
  }
  r.status = parser.get().result_int();
  r.keep_alive = parser.get().keep_alive();
  co_return r;
}

net::awaitable<std::string> client::read_until_close() {
  std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.clear();
  co_await net::async_read(stream_, net::dynamic_buffer(out), use_tuple);
  co_return out;
}

net::awaitable<std::string> client::read_some_text() {
  if (buffer_.size() == 0) {
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), use_tuple);
    buffer_.commit(n);
  }
  std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.clear();
  co_return out;
}

net::awaitable<error_code> client::send(const std::string& bytes) {
  auto [ec, n] = co_await net::async_write(stream_, net::buffer(bytes), use_tuple);
  co_return ec;
}

net::awaitable<std::string> client::raw(const std::string& bytes) {
  co_await net::async_write(stream_, net::buffer(bytes), use_tuple);
  std::string out;
  co_await net::async_read(stream_, net::dynamic_buffer(out), use_tuple);  // until the bridge closes
  co_return out;
}

}  // namespace exbridge::proxy::test
