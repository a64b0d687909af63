// Reading [[fault]] tables out of a parsed TOML document (a --faults file, a --config file, PUT /faults).
#pragma once

#include <toml++/toml.h>

#include <string>
#include <vector>

#include "fake_exchange/faults.hpp"

namespace exbridge::fake_exchange {

/// The rules of `root`'s [[fault]] tables (none when absent). `source` names the document in messages;
/// unknown keys, bad values and incomplete rules throw config_error naming the line.
std::vector<fault_rule> parse_fault_rules(const toml::table& root, const std::string& source);

}  // namespace exbridge::fake_exchange
