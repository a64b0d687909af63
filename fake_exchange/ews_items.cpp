// What FindItem and GetItem say about an item, as Exchange 2007 SP1 does: the ItemShape (BaseShape IdOnly /
// Default / AllProperties, AdditionalProperties, BodyType) chooses the properties, written in the schema's
// order (ItemType's elements, then MessageType's); FindItem's Restriction (search expressions over item and
// message properties) and SortOrder (FieldOrder) choose and order the items.
//
// Every value comes from item_meta and the item's MIME headers (mailbox::headers), never from the MIME body,
// so a restriction over a mailbox of a million items costs one item_meta per item and no MIME bytes. Fields
// a restriction or sort names that fake-exchange does not model (Body, recipients, extended properties, ...)
// are refused the way Exchange refuses a path it cannot query: ErrorUnsupportedPathForQuery /
// ErrorUnsupportedPathForSortGroup as a per-response-message error with HTTP 200.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <functional>

#include "common/xml.hpp"
#include "fake_exchange/ews_internal.hpp"

namespace exbridge::fake_exchange {
// --- property values --------------------------------------------------------------------------------------

enum class value_kind { text, number, boolean, datetime };

struct queryable_field {
  std::string_view uri;
  value_kind kind;
};

namespace {

struct value {
  value_kind kind = value_kind::text;
  std::string text;
  long long number = 0;  ///< number, boolean (0/1), datetime (milliseconds since 1970, UTC)
};

// The fields a restriction or sort may name: everything fake-exchange can answer from item_meta.
constexpr queryable_field queryable_fields[] = {
    {"item:Subject", value_kind::text},
    {"item:ItemClass", value_kind::text},
    {"item:Sensitivity", value_kind::text},
    {"item:Importance", value_kind::text},
    {"item:DateTimeReceived", value_kind::datetime},
    {"item:DateTimeSent", value_kind::datetime},
    {"item:DateTimeCreated", value_kind::datetime},
    {"item:LastModifiedTime", value_kind::datetime},
    {"item:Size", value_kind::number},
    {"item:HasAttachments", value_kind::boolean},
    {"item:IsDraft", value_kind::boolean},
    {"item:IsSubmitted", value_kind::boolean},
    {"item:IsFromMe", value_kind::boolean},
    {"item:IsResend", value_kind::boolean},
    {"item:DisplayTo", value_kind::text},
    {"message:IsRead", value_kind::boolean},
    {"message:InternetMessageId", value_kind::text},
    {"message:ConversationTopic", value_kind::text},
    {"message:IsReadReceiptRequested", value_kind::boolean},
    {"message:IsDeliveryReceiptRequested", value_kind::boolean},
};

// Properties that exist in the schema but that no generated item has: Exists is false for them.
constexpr std::string_view absent_fields[] = {"item:Categories", "item:InReplyTo", "item:ReminderDueBy", "message:References",
                                              "message:CcRecipients", "message:BccRecipients", "message:ReplyTo"};

const queryable_field* find_queryable(std::string_view uri) {
  for (const auto& f : queryable_fields) {
    if (f.uri == uri) return &f;
  }
  return nullptr;
}

long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<long long> parse_xs_datetime(std::string_view s) {
  // YYYY-MM-DDThh:mm:ss[.fff][Z|(+|-)hh:mm]; no zone means UTC (the TimeZoneContext clients send is UTC).
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || s[10] != 'T' || !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) ||
      s[16] != ':' || !digits(s, 17, 2, sec) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    return std::nullopt;
  }
  std::size_t at = 19;
  long long ms = 0;
  if (at < s.size() && s[at] == '.') {
    long long scale = 100;
    ++at;
    const std::size_t start = at;
    for (; at < s.size() && std::isdigit(static_cast<unsigned char>(s[at])); ++at) {
      ms += scale * (s[at] - '0');
      scale /= 10;
    }
    if (at == start) return std::nullopt;
  }
  long long offset_minutes = 0;
  if (at < s.size() && s[at] == 'Z') {
    ++at;
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, at + 1, 2, oh) || at + 3 >= s.size() || s[at + 3] != ':' || !digits(s, at + 4, 2, om)) return std::nullopt;
    offset_minutes = (s[at] == '-' ? -1 : 1) * (oh * 60 + om);
    at += 6;
  }
  if (at != s.size()) return std::nullopt;
  const long long days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_minutes * 60) * 1000 + ms;
}

namespace {

value field_value(const queryable_field& f, const item_meta& m, const mailbox& box) {
  value v;
  v.kind = f.kind;
  const std::string_view u = f.uri;
  if (u == "item:Subject" || u == "message:ConversationTopic") v.text = m.subject;
  else if (u == "item:ItemClass") v.text = "IPM.Note";
  else if (u == "item:Sensitivity" || u == "item:Importance") v.text = "Normal";
  else if (u == "item:DisplayTo") v.text = box.owner().display_name;
  else if (u == "message:InternetMessageId") v.text = box.headers(m).message_id;
  else if (f.kind == value_kind::datetime) v.number = parse_xs_datetime(m.received).value_or(0);
  else if (u == "item:Size") v.number = static_cast<long long>(m.size);
  else if (u == "item:HasAttachments") v.number = m.has_attachment ? 1 : 0;
  else if (u == "message:IsRead") v.number = m.is_read ? 1 : 0;
  else v.number = 0;  // IsDraft, IsSubmitted, IsFromMe, IsResend, the receipts: false for received mail
  return v;
}

/// A Constant's Value as a value of `kind`; nullopt when it does not convert.
std::optional<value> constant_value(value_kind kind, std::string_view text) {
  value v;
  v.kind = kind;
  switch (kind) {
    case value_kind::text:
      v.text = std::string(text);
      return v;
    case value_kind::boolean:
      if (text == "true" || text == "1") v.number = 1;
      else if (text == "false" || text == "0") v.number = 0;
      else return std::nullopt;
      return v;
    case value_kind::number: {
      const std::string s(text);
      char* end = nullptr;
      v.number = std::strtoll(s.c_str(), &end, 10);
      if (s.empty() || end != s.c_str() + s.size()) return std::nullopt;
      return v;
    }
    case value_kind::datetime: {
      const auto ms = parse_xs_datetime(text);
      if (!ms) return std::nullopt;
      v.number = *ms;
      return v;
    }
  }
  return std::nullopt;
}

int compare_text_ignoring_case(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const int ca = std::tolower(static_cast<unsigned char>(a[i])), cb = std::tolower(static_cast<unsigned char>(b[i]));
    if (ca != cb) return ca < cb ? -1 : 1;
  }
  return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
}

/// Exchange compares strings in the store's collation, which ignores case (IsEqualTo "FOO" matches "foo").
int compare_values(const value& a, const value& b) {
  if (a.kind == value_kind::text) return compare_text_ignoring_case(a.text, b.text);
  return a.number == b.number ? 0 : (a.number < b.number ? -1 : 1);
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool contains_match(std::string haystack, std::string needle, std::string_view mode, bool ignore_case) {
  if (ignore_case) {
    haystack = ascii_lower(haystack);
    needle = ascii_lower(needle);
  }
  if (mode == "FullString") return haystack == needle;
  if (mode == "Prefixed") return haystack.compare(0, needle.size(), needle) == 0;
  if (mode == "Substring") return haystack.find(needle) != std::string::npos;
  // PrefixOnWords: some word starts with the constant; ExactPhrase: the constant occurs on word boundaries.
  const bool phrase = mode == "ExactPhrase";
  for (std::size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) {
    const bool starts_word = at == 0 || !is_word_char(haystack[at - 1]);
    const std::size_t end = at + needle.size();
    const bool ends_word = end >= haystack.size() || !is_word_char(haystack[end]) || needle.empty();
    if (starts_word && (!phrase || ends_word)) return true;
  }
  return false;
}

}  // namespace

// --- Restriction --------------------------------------------------------------------------------------------

struct search_expression {
  enum class op { eq, ne, gt, ge, lt, le, contains, excludes, exists, all_of, any_of, negate } kind = op::eq;
  const queryable_field* field = nullptr;       ///< the FieldURI (nullptr for Exists on an absent field)
  const queryable_field* other_field = nullptr;  ///< FieldURIOrConstant naming a field
  value constant;
  std::string mode;
  bool ignore_case = false;
  unsigned long long mask = 0;
  bool exists = false;
  std::vector<search_expression> operands;
};

namespace {

struct compile_state {
  query_error error;
  bool failed = false;
  void unsupported(std::string_view uri) {
    if (failed) return;
    failed = true;
    error.code = "ErrorUnsupportedPathForQuery";
    error.text = "The property can not be used with this type of restriction.";
    error.path = std::string(uri);
  }
  void schema(std::string detail) {
    if (failed) return;
    failed = true;
    error.schema = true;
    error.text = std::move(detail);
  }
  void invalid_value(std::string_view uri) {
    if (failed) return;
    failed = true;
    error.code = "ErrorInvalidValueForProperty";
    error.text = "The value is invalid for property.";
    error.path = std::string(uri);
  }
};

std::vector<pugi::xml_node> element_children(const pugi::xml_node& n) {
  std::vector<pugi::xml_node> out;
  for (const auto& c : n.children()) {
    if (c.type() == pugi::node_element) out.push_back(c);
  }
  return out;
}

/// The property path an expression names: FieldURI, IndexedFieldURI or ExtendedFieldURI.
std::string path_of(const pugi::xml_node& path) {
  const std::string_view name = local_name(path);
  if (name == "FieldURI") return path.attribute("FieldURI").value();
  if (name == "IndexedFieldURI") return std::string(path.attribute("FieldURI").value()) + ":" + path.attribute("FieldIndex").value();
  if (name == "ExtendedFieldURI") return "ExtendedProperty";
  return "";
}

bool is_path(const pugi::xml_node& n) {
  const std::string_view name = local_name(n);
  return name == "FieldURI" || name == "IndexedFieldURI" || name == "ExtendedFieldURI";
}

search_expression compile(const pugi::xml_node& n, compile_state& st) {
  search_expression e;
  const std::string name(local_name(n));
  const auto kids = element_children(n);
  using op = search_expression::op;
  if (name == "And" || name == "Or" || name == "Not") {
    e.kind = name == "And" ? op::all_of : (name == "Or" ? op::any_of : op::negate);
    if (kids.empty() || (name == "Not" && kids.size() != 1)) {
      st.schema("The element '" + name + "' in namespace '" + ns_types + "' has incomplete content.");
      return e;
    }
    for (const auto& k : kids) e.operands.push_back(compile(k, st));
    return e;
  }
  static const std::pair<std::string_view, op> relations[] = {
      {"IsEqualTo", op::eq},  {"IsNotEqualTo", op::ne},         {"IsGreaterThan", op::gt},
      {"IsGreaterThanOrEqualTo", op::ge}, {"IsLessThan", op::lt}, {"IsLessThanOrEqualTo", op::le}};
  const auto relation = std::find_if(std::begin(relations), std::end(relations), [&](const auto& r) { return r.first == name; });
  const bool known = relation != std::end(relations) || name == "Contains" || name == "Excludes" || name == "Exists";
  if (!known) {
    st.schema("The element '" + name + "' in namespace '" + ns_types + "' is not a 2007 search expression.");
    return e;
  }
  if (kids.empty() || !is_path(kids[0])) {
    st.schema("The element '" + name + "' in namespace '" + ns_types + "' has incomplete content. List of possible "
              "elements expected: 'Path' in namespace '" + ns_types + "'.");
    return e;
  }
  const std::string uri = path_of(kids[0]);
  e.field = find_queryable(uri);
  if (name == "Exists") {
    e.kind = op::exists;
    const bool absent = std::find(std::begin(absent_fields), std::end(absent_fields), uri) != std::end(absent_fields);
    if (e.field == nullptr && !absent) st.unsupported(uri);
    e.exists = e.field != nullptr;
    return e;
  }
  if (e.field == nullptr) {
    st.unsupported(uri);
    return e;
  }
  if (kids.size() != 2) {
    st.schema("The element '" + name + "' in namespace '" + ns_types + "' has invalid child elements.");
    return e;
  }
  if (name == "Contains") {
    e.kind = op::contains;
    if (e.field->kind != value_kind::text) st.unsupported(uri);  // Contains works on strings only
    if (local_name(kids[1]) != "Constant") {
      st.schema("The element 'Contains' in namespace '" + std::string(ns_types) + "' expects 'Constant'.");
      return e;
    }
    e.constant = *constant_value(value_kind::text, kids[1].attribute("Value").value());
    e.mode = n.attribute("ContainmentMode").as_string("FullString");
    const std::string comparison = n.attribute("ContainmentComparison").as_string("Exact");
    static const std::string_view modes[] = {"FullString", "Prefixed", "Substring", "PrefixOnWords", "ExactPhrase"};
    static const std::string_view comparisons[] = {"Exact", "IgnoreCase", "IgnoreNonSpacingCharacters", "Loose",
                                                   "IgnoreCaseAndNonSpacingCharacters", "LooseAndIgnoreCase",
                                                   "LooseAndIgnoreNonSpace", "LooseAndIgnoreCaseAndIgnoreNonSpace"};
    if (std::find(std::begin(modes), std::end(modes), e.mode) == std::end(modes) ||
        std::find(std::begin(comparisons), std::end(comparisons), comparison) == std::end(comparisons)) {
      st.schema("The 'ContainmentMode' or 'ContainmentComparison' attribute is invalid - The Enumeration constraint failed.");
      return e;
    }
    // Loose matching (MAPI's FL_LOOSE) ignores case as well.
    e.ignore_case = comparison.find("IgnoreCase") != std::string::npos || comparison.find("Loose") != std::string::npos;
    return e;
  }
  if (name == "Excludes") {
    e.kind = op::excludes;
    if (e.field->kind != value_kind::number) st.unsupported(uri);  // a bitmask applies to integers only
    const std::string mask = kids[1].attribute("Value").value();
    char* end = nullptr;
    e.mask = std::strtoull(mask.c_str(), &end, 0);  // decimal or 0x hex, as the schema's examples write it
    if (local_name(kids[1]) != "Bitmask" || mask.empty() || end != mask.c_str() + mask.size()) st.invalid_value(uri);
    return e;
  }
  e.kind = relation->second;
  if (local_name(kids[1]) != "FieldURIOrConstant") {
    st.schema("The element '" + name + "' in namespace '" + ns_types + "' expects 'FieldURIOrConstant'.");
    return e;
  }
  const pugi::xml_node operand = element_children(kids[1]).empty() ? pugi::xml_node() : element_children(kids[1])[0];
  if (local_name(operand) == "Constant") {
    const auto v = constant_value(e.field->kind, operand.attribute("Value").value());
    if (!v) st.invalid_value(uri);
    else e.constant = *v;
  } else if (is_path(operand)) {
    const std::string other = path_of(operand);
    e.other_field = find_queryable(other);
    if (e.other_field == nullptr || e.other_field->kind != e.field->kind) st.unsupported(other);
  } else {
    st.schema("The element 'FieldURIOrConstant' in namespace '" + std::string(ns_types) + "' has incomplete content.");
  }
  return e;
}

bool evaluate(const search_expression& e, const item_meta& m, const mailbox& box) {
  using op = search_expression::op;
  switch (e.kind) {
    case op::all_of:
      return std::all_of(e.operands.begin(), e.operands.end(), [&](const auto& o) { return evaluate(o, m, box); });
    case op::any_of:
      return std::any_of(e.operands.begin(), e.operands.end(), [&](const auto& o) { return evaluate(o, m, box); });
    case op::negate:
      return !evaluate(e.operands.front(), m, box);
    case op::exists:
      return e.exists;
    case op::contains:
      return contains_match(field_value(*e.field, m, box).text, e.constant.text, e.mode, e.ignore_case);
    case op::excludes:
      return (static_cast<unsigned long long>(field_value(*e.field, m, box).number) & e.mask) == 0;
    default:
      break;
  }
  const value left = field_value(*e.field, m, box);
  const int c = compare_values(left, e.other_field != nullptr ? field_value(*e.other_field, m, box) : e.constant);
  switch (e.kind) {
    case op::eq: return c == 0;
    case op::ne: return c != 0;
    case op::gt: return c > 0;
    case op::ge: return c >= 0;
    case op::lt: return c < 0;
    case op::le: return c <= 0;
    default: return false;
  }
}

}  // namespace

item_query::item_query() = default;
item_query::~item_query() = default;
item_query::item_query(item_query&&) noexcept = default;
item_query& item_query::operator=(item_query&&) noexcept = default;

std::optional<query_error> item_query::parse(const pugi::xml_node& restriction, const pugi::xml_node& sort_order) {
  compile_state st;
  if (restriction) {
    const auto kids = element_children(restriction);
    if (kids.size() != 1) {
      st.schema("The element 'Restriction' in namespace '" + std::string(ns_messages) +
                "' has incomplete content. List of possible elements expected: 'SearchExpression' in namespace '" +
                ns_types + "'.");
    } else {
      restriction_ = std::make_unique<search_expression>(compile(kids[0], st));
    }
  }
  if (!st.failed && sort_order) {
    for (const auto& order : element_children(sort_order)) {
      const std::string direction = order.attribute("Order").value();
      const auto paths = element_children(order);
      if (local_name(order) != "FieldOrder" || (direction != "Ascending" && direction != "Descending") || paths.size() != 1 ||
          !is_path(paths[0])) {
        st.schema("The element 'SortOrder' needs FieldOrder elements with Order 'Ascending' or 'Descending' and one path.");
        break;
      }
      const std::string uri = path_of(paths[0]);
      const queryable_field* f = find_queryable(uri);
      if (f == nullptr) {
        st.failed = true;
        st.error.code = "ErrorUnsupportedPathForSortGroup";
        st.error.text = "The property can not be used for sorting or grouping results.";
        st.error.path = uri;
        break;
      }
      sort_.push_back({f, direction == "Descending"});
    }
  }
  if (st.failed) return st.error;
  return std::nullopt;
}

bool item_query::matches(const item_meta& m, const mailbox& box) const {
  return !restriction_ || evaluate(*restriction_, m, box);
}

std::vector<unsigned> item_query::select(const mailbox& box, std::string_view folder) const {
  const unsigned total = box.count(folder);
  std::vector<unsigned> out;
  if (!restriction_ && sort_.empty()) {
    out.resize(total);
    for (unsigned i = 0; i < total; ++i) out[i] = i;
    return out;
  }
  // Sort keys are held per matching item (a few bytes each); items themselves are regenerated when listed.
  std::vector<std::pair<std::vector<value>, unsigned>> keyed;
  for (unsigned i = 0; i < total; ++i) {
    const item_meta m = box.item(folder, i);
    if (!matches(m, box)) continue;
    if (sort_.empty()) {
      out.push_back(i);
      continue;
    }
    std::vector<value> keys;
    keys.reserve(sort_.size());
    for (const auto& s : sort_) keys.push_back(field_value(*s.field, m, box));
    keyed.emplace_back(std::move(keys), i);
  }
  if (sort_.empty()) return out;
  std::stable_sort(keyed.begin(), keyed.end(), [this](const auto& a, const auto& b) {
    for (std::size_t k = 0; k < sort_.size(); ++k) {
      const int c = compare_values(a.first[k], b.first[k]);
      if (c != 0) return sort_[k].descending ? c > 0 : c < 0;
    }
    return false;  // ties keep folder order
  });
  out.reserve(keyed.size());
  for (const auto& k : keyed) out.push_back(k.second);
  return out;
}

// --- ItemShape and the properties ---------------------------------------------------------------------------

item_shape parse_item_shape(const pugi::xml_node& shape) {
  item_shape s;
  const std::string base = child_local(shape, "BaseShape").text().get();
  s.base = base == "AllProperties" ? item_shape::all : (base == "Default" ? item_shape::default_shape : item_shape::id_only);
  s.mime = xs_boolean(child_local(shape, "IncludeMimeContent").text().get());
  if (const pugi::xml_node body_type = child_local(shape, "BodyType")) s.body_type = body_type.text().get();
  for (const auto& path : child_local(shape, "AdditionalProperties").children()) {
    if (local_name(path) != "FieldURI") continue;  // indexed and extended properties: none of the items has one
    const std::string uri = path.attribute("FieldURI").value();
    if (uri == "item:MimeContent") s.mime = true;
    else s.additional.push_back(uri);
  }
  return s;
}

namespace {

// Which properties each BaseShape returns for a message. Default is the summary fake-exchange has always
// given; AllProperties follows what a 2007 SP1 GetItem returns for a received message that has values, minus
// what FindItem cannot return (Body, Attachments, recipients: GetItem only).
constexpr std::string_view default_properties[] = {"item:Subject", "item:Attachments", "item:DateTimeReceived", "item:Size",
                                                   "item:HasAttachments", "message:IsRead"};
constexpr std::string_view get_item_only[] = {"item:Body", "item:Attachments", "message:ToRecipients",
                                              "message:CcRecipients", "message:BccRecipients"};

bool wanted(const item_shape& s, std::string_view uri, bool find_item) {
  const bool only_get = std::find(std::begin(get_item_only), std::end(get_item_only), uri) != std::end(get_item_only);
  if (find_item && only_get) return false;
  if (std::find(s.additional.begin(), s.additional.end(), uri) != s.additional.end()) return true;
  if (s.base == item_shape::all) return true;
  if (s.base == item_shape::default_shape) {
    return std::find(std::begin(default_properties), std::end(default_properties), uri) != std::end(default_properties);
  }
  return false;
}

std::string mailbox_xml(std::string_view name, std::string_view email, bool name_only) {
  std::string out = "<t:Mailbox><t:Name>" + xml_escape(name) + "</t:Name>";
  if (!name_only) out += "<t:EmailAddress>" + xml_escape(email) + "</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType>";
  return out + "</t:Mailbox>";
}

std::string element(std::string_view name, std::string_view text) {
  return "<t:" + std::string(name) + ">" + xml_escape(text) + "</t:" + std::string(name) + ">";
}

}  // namespace

item_properties message_properties(const item_meta& m, const mailbox& box, const item_shape& s, bool find_item) {
  item_properties p;
  const item_headers h = box.headers(m);
  const auto want = [&](std::string_view uri) { return wanted(s, uri, find_item); };
  const auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  // ItemType: ItemId, ParentFolderId, ItemClass, Subject, Sensitivity, | Body |, Attachments, DateTimeReceived,
  // Size, Categories, Importance, InReplyTo, IsSubmitted, IsDraft, IsFromMe, IsResend, IsUnmodified,
  // InternetMessageHeaders, DateTimeSent, DateTimeCreated, ResponseObjects, ReminderDueBy, ReminderIsSet,
  // ReminderMinutesBeforeStart, DisplayCc, DisplayTo, HasAttachments, ExtendedProperty, Culture, ...
  std::string& a = p.before_body;
  a = item_id_xml(m);
  if (want("item:ParentFolderId")) {
    a += "<t:ParentFolderId Id=\"" + folder_id(box.owner(), m.folder) + "\" ChangeKey=\"AQAAAA==\" />";
  }
  if (want("item:ItemClass")) a += element("ItemClass", "IPM.Note");
  if (want("item:Subject")) a += element("Subject", m.subject);
  if (want("item:Sensitivity")) a += element("Sensitivity", "Normal");
  p.body = want("item:Body");
  p.body_html = s.body_type == "HTML";
  std::string& b = p.after_body;
  if (want("item:Attachments")) {
    if (const auto att = box.attachment(m)) {
      b += "<t:Attachments>" + file_attachment_xml(*att, false) + "</t:Attachments>";
    }
  }
  if (want("item:DateTimeReceived")) b += element("DateTimeReceived", m.received);
  if (want("item:Size")) b += element("Size", std::to_string(std::min<std::uint64_t>(m.size, 2147483647)));
  if (want("item:Importance")) b += element("Importance", "Normal");
  if (want("item:IsSubmitted")) b += element("IsSubmitted", flag(false));
  if (want("item:IsDraft")) b += element("IsDraft", flag(false));
  if (want("item:IsFromMe")) b += element("IsFromMe", flag(false));
  if (want("item:IsResend")) b += element("IsResend", flag(false));
  if (want("item:IsUnmodified")) b += element("IsUnmodified", flag(true));
  if (want("item:DateTimeSent")) b += element("DateTimeSent", h.date);
  if (want("item:DateTimeCreated")) b += element("DateTimeCreated", m.received);
  if (want("item:ReminderIsSet")) b += element("ReminderIsSet", flag(false));
  if (want("item:ReminderMinutesBeforeStart")) b += element("ReminderMinutesBeforeStart", "0");
  if (want("item:DisplayTo")) b += element("DisplayTo", h.to_name);
  if (want("item:HasAttachments")) b += element("HasAttachments", flag(m.has_attachment));
  if (want("item:Culture")) b += element("Culture", "en-US");
  // MessageType: Sender, ToRecipients, CcRecipients, BccRecipients, IsReadReceiptRequested,
  // IsDeliveryReceiptRequested, ConversationIndex, ConversationTopic, From, InternetMessageId, IsRead,
  // IsResponseRequested, References, ReplyTo, ReceivedBy, ReceivedRepresenting. FindItem gives a mailbox's
  // name only (exchangelib's MailboxField notes the same of real servers).
  if (want("message:Sender")) b += "<t:Sender>" + mailbox_xml(h.from_name, h.from_email, find_item) + "</t:Sender>";
  if (want("message:ToRecipients")) b += "<t:ToRecipients>" + mailbox_xml(h.to_name, h.to_email, false) + "</t:ToRecipients>";
  if (want("message:IsReadReceiptRequested")) b += element("IsReadReceiptRequested", flag(false));
  if (want("message:IsDeliveryReceiptRequested")) b += element("IsDeliveryReceiptRequested", flag(false));
  if (want("message:ConversationTopic")) b += element("ConversationTopic", m.subject);
  if (want("message:From")) b += "<t:From>" + mailbox_xml(h.from_name, h.from_email, find_item) + "</t:From>";
  if (want("message:InternetMessageId")) b += element("InternetMessageId", h.message_id);
  if (want("message:IsRead")) b += element("IsRead", flag(m.is_read));
  if (want("message:ReceivedBy")) b += "<t:ReceivedBy>" + mailbox_xml(h.to_name, h.to_email, find_item) + "</t:ReceivedBy>";
  if (want("message:ReceivedRepresenting")) {
    b += "<t:ReceivedRepresenting>" + mailbox_xml(h.to_name, h.to_email, find_item) + "</t:ReceivedRepresenting>";
  }
  return p;
}

}  // namespace exbridge::fake_exchange
