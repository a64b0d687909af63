// The admin listener in process: authentication (whole credentials, constant time), strict Prometheus
// parsing of /metrics (a parser as strict as a scraper, tested first), the JSON stats and the live view.
#include <gtest/gtest.h>

#include <httplib.h>

#include <boost/json.hpp>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "common/base64.hpp"
#include "common/errors.hpp"
#include "fake_exchange/server.hpp"
#include "proxy/stats/admin.hpp"
#include "tests/support/bridge_fixture.hpp"

namespace exbridge::proxy::test {
namespace {

// --- a strict Prometheus text-format (0.0.4) parser ---------------------------------------------------------

struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// Parses the exposition text or throws std::runtime_error naming the offending line: metric and label names by the
/// grammar, label values with only \\ \" \n escapes, a TYPE before a family's first sample and at most once,
/// no duplicate series, and for histograms cumulative buckets ending in +Inf equal to _count.
std::vector<sample> parse_prometheus(const std::string& text) {
  static const std::regex metric_name("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex label_name("[a-zA-Z_][a-zA-Z0-9_]*");
  std::vector<sample> out;
  std::map<std::string, std::string> types;
  std::set<std::string> series;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error("line " + std::to_string(number) + ": " + why + ": " + line);
  };
  if (text.empty() || text.back() != '\n') fail("the text must end with a line feed");
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, kind, name;
      words >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // other comments are allowed
      if (!std::regex_match(name, metric_name)) fail("bad metric name in " + kind);
      if (kind == "TYPE") {
        std::string type;
        words >> type;
        static const std::set<std::string> known{"counter", "gauge", "histogram", "summary", "untyped"};
        if (!known.contains(type)) fail("unknown type");
        if (types.contains(name)) fail("TYPE given twice");
        types[name] = type;
      }
      continue;
    }
    sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!std::regex_match(s.name, metric_name)) fail("bad metric name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        if (eq == std::string::npos) fail("label without =");
        const std::string lname = line.substr(i, eq - i);
        if (!std::regex_match(lname, label_name)) fail("bad label name '" + lname + "'");
        if (eq + 1 >= line.size() || line[eq + 1] != '"') fail("label value not quoted");
        std::string value;
        std::size_t k = eq + 2;
        for (; k < line.size() && line[k] != '"'; ++k) {
          if (line[k] == '\\') {
            ++k;
            if (k >= line.size() || (line[k] != '\\' && line[k] != '"' && line[k] != 'n')) fail("bad escape");
            value += line[k] == 'n' ? '\n' : line[k];
          } else {
            value += line[k];
          }
        }
        if (k >= line.size()) fail("unterminated label value");
        if (s.labels.contains(lname)) fail("label given twice");
        s.labels[lname] = value;
        i = k + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) fail("unterminated label set");
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') fail("no value");
    const std::string value = line.substr(i + 1);
    if (value == "+Inf") s.value = INFINITY;
    else if (value == "-Inf") s.value = -INFINITY;
    else if (value == "NaN") s.value = NAN;
    else {
      std::size_t used = 0;
      try {
        s.value = std::stod(value, &used);
      } catch (const std::exception&) {
        fail("value is not a number");
      }
      if (used != value.size()) fail("trailing text after the value");
    }
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string base = s.name.substr(0, s.name.size() - std::min(s.name.size(), std::strlen(suffix)));
      if (s.name.ends_with(suffix) && types.contains(base) && types[base] == "histogram") family = base;
    }
    if (!types.contains(family)) fail("sample before its TYPE line");
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
    if (!series.insert(key).second) fail("duplicate series");
    out.push_back(std::move(s));
  }
  // Histograms: per label set (without le), buckets non-decreasing in le order, +Inf present and == _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;
  std::map<std::string, double> counts;
  for (const auto& s : out) {
    const auto strip = [&](const std::string& base) {
      std::string key = base;
      for (const auto& [k, v] : s.labels) {
        if (k != "le") key += "|" + k + "=" + v;
      }
      return key;
    };
    if (s.name.ends_with("_bucket")) {
      if (!s.labels.contains("le")) throw std::runtime_error(s.name + " without le");
      const std::string le = s.labels.at("le");
      buckets[strip(s.name.substr(0, s.name.size() - 7))].emplace_back(le == "+Inf" ? INFINITY : std::stod(le), s.value);
    } else if (s.name.ends_with("_count")) {
      counts[strip(s.name.substr(0, s.name.size() - 6))] = s.value;
    }
  }
  for (auto& [key, list] : buckets) {
    for (std::size_t k = 1; k < list.size(); ++k) {
      if (list[k - 1].first >= list[k].first) throw std::runtime_error(key + ": le not ascending");
      if (list[k - 1].second > list[k].second) throw std::runtime_error(key + ": buckets not cumulative");
    }
    if (!std::isinf(list.back().first)) throw std::runtime_error(key + ": no +Inf bucket");
    if (list.back().second != counts[key]) throw std::runtime_error(key + ": +Inf bucket differs from _count");
  }
  return out;
}

/// The parser's complaint about `text`, or "" when it parses.
std::string prometheus_error(const std::string& text) {
  try {
    parse_prometheus(text);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

double value_of(const std::vector<sample>& samples, const std::string& name,
                const std::map<std::string, std::string>& labels = {}) {
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) match &= s.labels.contains(k) && s.labels.at(k) == v;
    if (match) return s.value;
  }
  ADD_FAILURE() << "no sample " << name;
  return -1;
}

TEST(PrometheusParser, RefusesWhatAStrictScraperRefuses) {
  EXPECT_EQ(prometheus_error("# TYPE a counter\na{x=\"1\\\"2\"} 3\n"), "");
  EXPECT_NE(prometheus_error("a 1\n").find("sample before its TYPE line"), std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n").find("duplicate series"),
            std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE a counter\na{x=\"1\\q\"} 1\n").find("bad escape"), std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE a counter\na{1x=\"1\"} 1\n").find("bad label name"), std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE a counter\na 1x\n").find("trailing text"), std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n")
                .find("buckets not cumulative"),
            std::string::npos);
  EXPECT_NE(prometheus_error("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 0\n")
                .find("differs from _count"),
            std::string::npos);
}

// --- the admin listener ---------------------------------------------------------------------------------------

/// The bridge with its admin listener.
class AdminTest : public BridgeTest {};

TEST_F(AdminTest, AdminRefusesWithoutCredentialsAndServesParseableMetricsAndTheLiveView) {
  start_bridge(options_for_upstream());
  admin_settings a{.address = host_port{"127.0.0.1", 0}, .user = "ops", .password = "s3cret-admin"};
  admin_server admin(*bridge_, a);
  httplib::Client http("127.0.0.1", admin.port());
  for (const char* path : {"/", "/stats.json", "/metrics"}) {
    const auto anonymous = http.Get(path);
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401) << path;
    EXPECT_EQ(anonymous->get_header_value("WWW-Authenticate"), "Basic realm=\"exbridge admin\"");
    EXPECT_EQ(anonymous->body.find("exbridge_"), std::string::npos);
  }
  http.set_basic_auth("ops", "wrong");
  EXPECT_EQ(http.Get("/metrics")->status, 401);
  http.set_basic_auth("ops", "s3cret-admin");

  // One request done, one connection still open: the live view lists it with its bytes.
  io_.run([&]() -> net::awaitable<void> {
    client c(io_.context());
    EXPECT_FALSE(co_await c.connect(port()));
    EXPECT_EQ((co_await c.request("/big/5000")).status, 200u);
    const auto stats = http.Get("/stats.json");
    EXPECT_EQ(stats->status, 200);
    const auto json = boost::json::parse(stats->body).as_object();
    const auto& connections = json.at("connections").as_array();
    EXPECT_EQ(connections.size(), 1u);
    if (!connections.empty()) {
      const auto& c0 = connections[0].as_object();
      EXPECT_EQ(c0.at("requests").as_int64(), 1);
      EXPECT_EQ(c0.at("bytes_server_to_client").as_int64(), 5000);
      EXPECT_EQ(c0.at("last_request").as_string(), "GET /big/5000");
    }
    EXPECT_EQ(json.at("servers").as_array().size(), 1u);
  }());

  const auto metrics = http.Get("/metrics");
  ASSERT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(prometheus_error(metrics->body), "");
  const auto samples = parse_prometheus(metrics->body);
  EXPECT_EQ(value_of(samples, "exbridge_downstream_rq_total"), 1);
  EXPECT_EQ(value_of(samples, "exbridge_terminations_total", {{"reason", "completed"}}), 1);
  EXPECT_EQ(value_of(samples, "exbridge_timer_seconds_count", {{"timer", "total"}}), 1);
  EXPECT_EQ(value_of(samples, "exbridge_server_up", {{"pool", "default"}}), 1);
  EXPECT_EQ(value_of(samples, "exbridge_server_received_bytes_total", {{"pool", "default"}}) > 5000, true);
  const auto html = http.Get("/");
  EXPECT_EQ(html->status, 200);
  EXPECT_NE(html->body.find("<h2>Servers</h2>"), std::string::npos);
}

TEST(AdminAuth, ComparesWholeCredentials) {
  const auto basic = [](const std::string& s) { return "Basic " + base64_encode(s); };
  EXPECT_TRUE(basic_auth_matches(basic("ops:pw"), "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches(basic("ops:pw2"), "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches(basic("ops:p"), "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches(basic("op:spw"), "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches("Bearer x", "ops", "pw"));
  EXPECT_FALSE(basic_auth_matches("Basic !!!", "ops", "pw"));
}

}  // namespace
}  // namespace exbridge::proxy::test
