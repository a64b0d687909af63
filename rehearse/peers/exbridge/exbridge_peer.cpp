// The administrator's exbridge.toml in the lab (see exbridge_peer.hpp).
#include "rehearse/peers/exbridge/exbridge_peer.hpp"

#include <toml++/toml.h>

#include <sstream>

#include "common/errors.hpp"

namespace exbridge::rehearse {
namespace {

int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

/// Points one upstream table ([upstream] or a [[pool]]) at the lab: its servers, name and CA.
void retarget(toml::table& t, const lab_target& lab, const std::string& what, std::vector<std::string>& changes,
              std::size_t& next) {
  const auto take = [&] {
    const auto& list = lab.upstream_addresses;
    const std::string a = list.empty() ? std::string("127.0.0.1:1") : list[std::min(next, list.size() - 1)];
    ++next;
    return a;
  };
  if (auto* address = t.get("address")) {
    const std::string to = take();
    changes.push_back("line " + std::to_string(line_of(*address)) + ": " + what + ".address -> " + to);
    t.insert_or_assign("address", to);
  }
  if (auto* servers = t.get_as<toml::array>("servers")) {
    toml::array lab_servers;
    for (std::size_t i = 0; i < servers->size(); ++i) lab_servers.push_back(take());
    changes.push_back("line " + std::to_string(line_of(*servers)) + ": " + what + ".servers -> the lab's");
    t.insert_or_assign("servers", std::move(lab_servers));
  }
  for (const char* key : {"sni", "verify"}) {
    const std::string to = std::string(key) == "sni" ? lab.upstream_name : "ca:" + lab.ca_file;
    if (auto* n = t.get(key)) changes.push_back("line " + std::to_string(line_of(*n)) + ": " + what + "." + key + " -> " + to);
    t.insert_or_assign(key, to);
  }
}

}  // namespace

exbridge_rewrite rewrite_exbridge_for_lab(const std::filesystem::path& user_config, const lab_target& lab,
                                          const std::string& listen_address) {
  toml::table root;
  try {
    root = toml::parse_file(user_config.string());
  } catch (const toml::parse_error& e) {
    throw config_error(user_config.string() + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  exbridge_rewrite out;
  for (const char* key : {"user", "group", "chroot", "admin"}) {
    if (const auto* n = root.get(key)) {
      out.changes.push_back("line " + std::to_string(line_of(*n)) + ": " + key +
                            " left out (it needs this machine's users, folders or ports)");
      root.erase(key);
    }
  }
  auto* listen = root.get_as<toml::table>("listen");
  if (listen == nullptr) {
    root.insert("listen", toml::table{});
    listen = root.get_as<toml::table>("listen");
  }
  if (const auto* a = listen->get("address")) {
    out.changes.push_back("line " + std::to_string(line_of(*a)) + ": listen.address -> " + listen_address);
  }
  listen->insert_or_assign("address", listen_address);
  listen->insert_or_assign("certificate", toml::array{toml::table{{"cert", lab.cert}, {"key", lab.key}}});
  out.changes.push_back("listen.certificate -> the lab's");
  std::size_t next = 0;
  if (auto* upstream = root.get_as<toml::table>("upstream")) retarget(*upstream, lab, "upstream", out.changes, next);
  if (auto* pools = root.get_as<toml::array>("pool")) {
    for (auto& pool : *pools) {
      if (auto* t = pool.as_table()) {
        const std::string name = t->get("name") ? t->get("name")->value_or(std::string("pool")) : "pool";
        retarget(*t, lab, "pool " + name, out.changes, next);
      }
    }
  }
  std::ostringstream text;
  text << "# rehearse's lab copy of " << user_config.string() << "\n" << root << "\n";
  out.text = text.str();
  return out;
}

prepared_peer prepare_exbridge(const process_spec& process, const std::filesystem::path& program,
                               const std::vector<std::string>& upstreams, const std::string& upstream_name,
                               const lab_pki& pki, const std::filesystem::path& run_dir, double time_scale) {
  prepared_peer out;
  out.program = program;
  out.user_config = process.config;
  // exbridge binds port 0 and says where on its readiness line.
  const auto lab = lab_target_for(process, upstreams, upstream_name, pki, time_scale);
  const auto rewritten = rewrite_exbridge_for_lab(process.config, lab, "127.0.0.1:0");
  out.changes = rewritten.changes;
  out.lab_config = std::filesystem::absolute(run_dir) / (process.name + ".toml");
  write_file(out.lab_config, rewritten.text);
  std::ostringstream scale;
  scale << time_scale;
  // Always the scenario's time scale: exbridge's timers must run on the rehearsal's clock.
  out.args = {"--config", out.lab_config.string(), "--time-scale", scale.str()};
  out.args.insert(out.args.end(), process.args.begin(), process.args.end());
  return out;
}

}  // namespace exbridge::rehearse
