// Command-line parsing implementation.
#include "common/cli.hpp"

#include <algorithm>
#include <iostream>
#include <sstream>

#include "common/errors.hpp"

namespace exbridge {

std::string host_port::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

host_port parse_host_port(const std::string& text, const std::string& what, bool allow_zero) {
  const auto fail = [&](const std::string& why) -> host_port {
    throw config_error(what + ": '" + text + "' " + why + "; write HOST:PORT, e.g. 127.0.0.1:443 or [::1]:8443");
  };
  host_port out;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return fail("is malformed");
    out.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return fail("has no port");
    out.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) return fail("has no host");
  if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5) {
    return fail("has an invalid port");
  }
  const unsigned long port = std::stoul(port_text);
  if (port > 65535 || (port == 0 && !allow_zero)) return fail("has a port out of range");
  out.port = static_cast<unsigned short>(port);
  return out;
}

double parse_number(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw config_error(what + ": '" + text + "' is not a number");
  return value;
}

arg_parser::arg_parser(std::string program, std::string synopsis)
    : program_(std::move(program)), synopsis_(std::move(synopsis)) {}

void arg_parser::option(std::string name, std::string metavar, std::string help,
                        std::function<void(const std::string&)> set) {
  entries_.push_back({std::move(name), std::move(metavar), std::move(help), std::move(set), {}});
}

void arg_parser::flag(std::string name, std::string help, std::function<void()> set) {
  entries_.push_back({std::move(name), "", std::move(help), {}, std::move(set)});
}

void arg_parser::epilog(std::string text) { epilog_ = std::move(text); }

const arg_parser::entry* arg_parser::find(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

bool arg_parser::parse(int argc, char** argv, int first, std::vector<std::string>* positional) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << help();
      return false;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      if (positional != nullptr) {
        positional->push_back(arg);
        continue;
      }
      throw config_error("unexpected argument '" + arg + "'; run '" + program_ + " --help' for usage");
    }
    std::string value;
    bool has_value = false;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const entry* e = find(arg.substr(2));
    if (e == nullptr) {
      throw config_error("unknown option '" + arg + "'; run '" + program_ + " --help' for the list of options");
    }
    if (e->set_flag) {
      if (has_value) throw config_error("option '" + arg + "' takes no value");
      e->set_flag();
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) throw config_error("option '" + arg + "' needs a value (" + e->metavar + ")");
      value = argv[++i];
    }
    e->set_value(value);
  }
  return true;
}

std::string arg_parser::help() const {
  std::ostringstream out;
  out << "usage: " << program_ << ' ' << synopsis_ << "\n\noptions:\n";
  for (const auto& e : entries_) {
    std::string left = "  --" + e.name + (e.metavar.empty() ? "" : " " + e.metavar);
    if (left.size() < 34) left.resize(34, ' ');
    else left += "\n" + std::string(34, ' ');
    out << left << e.help << '\n';
  }
  out << "  --help                          show this help\n";
  if (!epilog_.empty()) out << '\n' << epilog_;
  return out.str();
}

std::string expand_index(const std::string& pattern, unsigned index, unsigned count) {
  const std::size_t width = std::max<std::size_t>(2, std::to_string(count).size());
  std::string number = std::to_string(index);
  if (number.size() < width) number.insert(0, width - number.size(), '0');
  std::string out = pattern;
  for (auto at = out.find("{n}"); at != std::string::npos; at = out.find("{n}", at + number.size())) {
    out.replace(at, 3, number);
  }
  return out;
}

}  // namespace exbridge
