// A small command-line parser shared by the three programs: "--name VALUE", "--name=VALUE" and
// boolean "--flag"; an unknown option is an error that names the option and points to --help.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace exbridge {

struct host_port {
  std::string host;
  unsigned short port = 0;
  std::string to_string() const;
};

/// Parses "HOST:PORT", "[v6]:PORT" (port 0 allowed when allow_zero). Throws config_error naming `what`.
host_port parse_host_port(const std::string& text, const std::string& what, bool allow_zero = true);

/// Parses a decimal number; throws config_error naming `what` when the text is not one.
double parse_number(const std::string& text, const std::string& what);

/// Replaces every "{n}" in `pattern` with `index` (1-based), zero-padded to the width of `count` (at least
/// two digits): user{n}@contoso.example -> user07@contoso.example. Numbered users are spelled the same way in
/// fake-exchange (--user-count) and in rehearse (a step's mailboxes).
std::string expand_index(const std::string& pattern, unsigned index, unsigned count);

class arg_parser {
 public:
  arg_parser(std::string program, std::string synopsis);

  /// An option taking a value; `metavar` names it in --help.
  void option(std::string name, std::string metavar, std::string help, std::function<void(const std::string&)> set);
  /// A boolean flag.
  void flag(std::string name, std::string help, std::function<void()> set);
  /// Free text appended to --help (examples, defaults, demo data).
  void epilog(std::string text);

  /// Parses argv[first..]. Returns false when --help was printed. Throws config_error on bad input.
  /// Positional arguments are collected and returned through `positional`.
  bool parse(int argc, char** argv, int first = 1, std::vector<std::string>* positional = nullptr);

  std::string help() const;

 private:
  struct entry {
    std::string name, metavar, help;
    std::function<void(const std::string&)> set_value;
    std::function<void()> set_flag;
  };
  const entry* find(const std::string& name) const;

  std::string program_, synopsis_, epilog_;
  std::vector<entry> entries_;
};

}  // namespace exbridge
