// fake-exchange's counters as JSON.
#include "fake_exchange/stats.hpp"

#include <boost/json.hpp>

namespace exbridge::fake_exchange {
namespace {

boost::json::object counts(const std::map<std::string, std::uint64_t>& m) {
  boost::json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

std::string stats_snapshot::to_json() const {
  return boost::json::serialize(boost::json::object{
      {"requests", boost::json::object{{"total", requests}, {"by_operation", counts(by_operation)}}},
      {"bytes_served", bytes_served},
      {"bytes_received", bytes_received},
      {"rpc", boost::json::object{{"in_bytes", rpc_in_bytes}, {"out_pings", rpc_out_pings}}},
      {"faults", boost::json::object{{"total", faults},
                                      {"by_rule", counts(faults_by_rule)},
                                      {"by_action", counts(faults_by_action)}}},
  });
}

}  // namespace exbridge::fake_exchange
