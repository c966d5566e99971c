#include "syncmesh/value.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "messages/time_text.hpp"
#include "syncmesh/errors.hpp"

namespace syncmesh {

namespace {

[[noreturn]] void throw_kind(value::kind have, const char* want) {
  throw type_error(std::string{"value is "} + to_string(have) + ", not "
                   + want);
}

void append_quoted(std::string& out, const std::string& xs, bool is_text) {
  static constexpr char hex[] = "0123456789abcdef";
  if (!is_text)
    out += "b";
  out += '"';
  for (unsigned char c : xs) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (is_text && c >= 0x80) {
      out += static_cast<char>(c); // UTF-8 text stays readable
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0x0f];
    }
  }
  out += '"';
}

void render(std::string& out, const value& x) {
  switch (x.type()) {
    case value::kind::nil:
      out += "nil";
      break;
    case value::kind::boolean:
      out += x.as_bool() ? "true" : "false";
      break;
    case value::kind::int64:
      out += std::to_string(x.as_int64());
      break;
    case value::kind::uint64:
      out += std::to_string(x.as_uint64());
      out += 'u';
      break;
    case value::kind::float64: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", x.as_float64());
      out += buf;
      break;
    }
    case value::kind::text:
      append_quoted(out, x.as_text(), true);
      break;
    case value::kind::bytes:
      append_quoted(out, x.as_bytes(), false);
      break;
    case value::kind::list: {
      out += '[';
      bool first = true;
      for (const auto& item : x.as_list()) {
        if (!first)
          out += ", ";
        first = false;
        render(out, item);
      }
      out += ']';
      break;
    }
    case value::kind::map: {
      out += '{';
      bool first = true;
      for (const auto& item : x.as_map()) {
        if (!first)
          out += ", ";
        first = false;
        append_quoted(out, item.key.data, item.key.is_text);
        out += ": ";
        render(out, item.val);
      }
      out += '}';
      break;
    }
    case value::kind::ext:
      out += "ext(" + std::to_string(x.as_ext().type) + ", ";
      append_quoted(out, x.as_ext().data, false);
      out += ')';
      break;
  }
}

} // namespace

value::value(value_map xs) : kind_(kind::map), data_(value_map{}) {
  auto& dst = std::get<value_map>(data_);
  dst.reserve(xs.size());
  for (auto& item : xs)
    insert_or_assign(std::move(item.key), std::move(item.val));
}

namespace {

/// True for an element written as braces `{text or bytes, value}`.
bool is_braced_field(const value& x, bool braced_pair) {
  return braced_pair && x.is_list() && x.as_list().size() == 2
         && (x.as_list()[0].is_text() || x.as_list()[0].is_bytes());
}

} // namespace

value::value(std::initializer_list<value> xs) {
  // The rule for braces (see the class comment): fields make a map, one
  // element is itself, anything else is a list.
  bool all_fields = xs.size() > 0;
  for (const auto& x : xs)
    all_fields = all_fields && is_braced_field(x, x.braced_pair_);
  if (all_fields) {
    kind_ = kind::map;
    data_ = value_map{};
    for (const auto& x : xs) {
      const auto& field = std::get<value_list>(x.data_);
      const auto& key = field[0];
      insert_or_assign(key.is_text() ? map_key{key.as_text()}
                                     : map_key::from_bytes(key.as_bytes()),
                       field[1]);
    }
    return;
  }
  if (xs.size() == 1) {
    kind_ = xs.begin()->kind_;
    data_ = xs.begin()->data_;
    return;
  }
  kind_ = kind::list;
  data_ = value_list(xs);
  braced_pair_
    = xs.size() == 2 && (xs.begin()->is_text() || xs.begin()->is_bytes());
}

value value::map(std::initializer_list<map_item> xs) {
  return value{value_map(xs)};
}

bool value::as_bool() const {
  if (!is_bool())
    throw_kind(kind_, "bool");
  return std::get<bool>(data_);
}

int64_t value::as_int64() const {
  if (is_int64())
    return std::get<int64_t>(data_);
  if (is_uint64()) {
    auto x = std::get<uint64_t>(data_);
    if (x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return static_cast<int64_t>(x);
    throw type_error("uint64 value " + std::to_string(x)
                     + " does not fit int64");
  }
  throw_kind(kind_, "an integer");
}

uint64_t value::as_uint64() const {
  if (is_uint64())
    return std::get<uint64_t>(data_);
  if (is_int64()) {
    auto x = std::get<int64_t>(data_);
    if (x >= 0)
      return static_cast<uint64_t>(x);
    throw type_error("int64 value " + std::to_string(x)
                     + " does not fit uint64");
  }
  throw_kind(kind_, "an integer");
}

double value::as_float64() const {
  switch (kind_) {
    case kind::float64:
      return std::get<double>(data_);
    case kind::int64:
      return static_cast<double>(std::get<int64_t>(data_));
    case kind::uint64:
      return static_cast<double>(std::get<uint64_t>(data_));
    default:
      throw_kind(kind_, "a number");
  }
}

const std::string& value::as_text() const& {
  if (!is_text())
    throw_kind(kind_, "text");
  return std::get<std::string>(data_);
}

std::string value::as_text() && {
  static_cast<const value&>(*this).as_text(); // throws for other kinds
  return std::move(std::get<std::string>(data_));
}

const std::string& value::as_bytes() const& {
  if (!is_text() && !is_bytes())
    throw_kind(kind_, "bytes");
  return std::get<std::string>(data_);
}

std::string value::as_bytes() && {
  static_cast<const value&>(*this).as_bytes(); // throws for other kinds
  return std::move(std::get<std::string>(data_));
}

const value_list& value::as_list() const& {
  if (!is_list())
    throw_kind(kind_, "list");
  return std::get<value_list>(data_);
}

value_list& value::as_list() & {
  if (!is_list())
    throw_kind(kind_, "list");
  return std::get<value_list>(data_);
}

value_list value::as_list() && {
  return std::move(as_list());
}

const value_map& value::as_map() const& {
  if (!is_map())
    throw_kind(kind_, "map");
  return std::get<value_map>(data_);
}

value_map& value::as_map() & {
  if (!is_map())
    throw_kind(kind_, "map");
  return std::get<value_map>(data_);
}

value_map value::as_map() && {
  return std::move(as_map());
}

const ext_value& value::as_ext() const& {
  if (!is_ext())
    throw_kind(kind_, "ext");
  return std::get<ext_value>(data_);
}

ext_value value::as_ext() && {
  static_cast<const value&>(*this).as_ext(); // throws for other kinds
  return std::move(std::get<ext_value>(data_));
}

const value* value::find(std::string_view text_key) const& {
  if (!is_map())
    return nullptr;
  for (const auto& item : std::get<value_map>(data_))
    if (item.key.is_text && item.key.data == text_key)
      return &item.val;
  return nullptr;
}

const value* value::find(const map_key& key) const& {
  if (!is_map())
    return nullptr;
  for (const auto& item : std::get<value_map>(data_))
    if (item.key == key)
      return &item.val;
  return nullptr;
}

value::owned_field value::find(std::string_view text_key) && {
  return owned_field{static_cast<const value&>(*this).find(text_key)};
}

value::owned_field value::find(const std::string& text_key) && {
  return owned_field{static_cast<const value&>(*this).find(text_key)};
}

value::owned_field value::find(const char* text_key) && {
  return owned_field{static_cast<const value&>(*this).find(text_key)};
}

value::owned_field value::find(const map_key& key) && {
  return owned_field{static_cast<const value&>(*this).find(key)};
}

std::ostream& operator<<(std::ostream& out, const value::owned_field& x) {
  if (!x)
    return out << "nothing";
  return out << *x;
}

void value::insert_or_assign(map_key key, value val) {
  auto& items = as_map();
  for (auto& item : items) {
    if (item.key == key) {
      item.val = std::move(val);
      return;
    }
  }
  items.push_back(map_item{std::move(key), std::move(val)});
}

bool operator==(const value& x, const value& y) {
  if (x.kind_ != y.kind_)
    return false;
  if (x.is_float64()) {
    // Bitwise, like the canonical encoding: a NaN equals the same NaN, and
    // 0.0 differs from -0.0, so equal values always encode alike.
    auto a = std::get<double>(x.data_);
    auto b = std::get<double>(y.data_);
    return std::memcmp(&a, &b, sizeof(double)) == 0;
  }
  return x.data_ == y.data_;
}

std::string to_string(const value& x) {
  std::string result;
  render(result, x);
  return result;
}

std::ostream& operator<<(std::ostream& out, const value& x) {
  return out << to_string(x);
}

std::string to_string(const bytes& x) {
  std::string result;
  append_quoted(result, x.str(), false);
  return result;
}

std::ostream& operator<<(std::ostream& out, const bytes& x) {
  return out << to_string(x);
}

const char* to_string(value::kind x) {
  switch (x) {
    case value::kind::nil:
      return "nil";
    case value::kind::boolean:
      return "bool";
    case value::kind::int64:
      return "int64";
    case value::kind::uint64:
      return "uint64";
    case value::kind::float64:
      return "float64";
    case value::kind::text:
      return "text";
    case value::kind::bytes:
      return "bytes";
    case value::kind::list:
      return "list";
    case value::kind::map:
      return "map";
    case value::kind::ext:
      return "ext";
  }
  return "unknown";
}

const char* to_string(errc x) {
  switch (x) {
    case errc::none:
      return "none";
    case errc::key_not_found:
      return "key_not_found";
    case errc::lease_held:
      return "lease_held";
    case errc::wrong_type:
      return "wrong_type";
    case errc::invalid_key:
      return "invalid_key";
    case errc::key_too_large:
      return "key_too_large";
    case errc::value_too_large:
      return "value_too_large";
    case errc::malformed:
      return "malformed";
    case errc::frame_too_large:
      return "frame_too_large";
    case errc::closed:
      return "closed";
    case errc::timeout:
      return "timeout";
    case errc::invalid_config:
      return "invalid_config";
    case errc::overloaded:
      return "overloaded";
    case errc::unreachable:
      return "unreachable";
    case errc::protocol_mismatch:
      return "protocol_mismatch";
    case errc::disconnected:
      return "disconnected";
    case errc::clock_offset:
      return "clock_offset";
    case errc::storage:
      return "storage";
    case errc::unconfirmed:
      return "unconfirmed";
  }
  return "unknown";
}

namespace {

/// "key 'k' is leased by node X until <ISO> (in 59 min)" for one conflict;
/// `key` is already printable.
std::string lease_text(const std::string& key, const node_id& owner,
                       uint64_t lease_end_us) {
  return "key '" + key + "' is leased by node " + owner.to_hex()
         + (lease_end_us == 0
              ? std::string{}
              : " until " + format_time_until(lease_end_us, wall_clock_us()));
}

/// A key as it can be shown in a message: text as is, other bytes escaped.
std::string printable_key(const std::string& key) {
  auto text = to_string(value::from_bytes(key));
  return text.substr(2, text.size() - 3); // strip b"..."
}

/// The message of a refusal with several conflicts: the first few in full
/// and how many more (a batch of 10,000 leased keys must not make a
/// megabyte of message; conflicts() has them all).
std::string conflicts_text(const std::vector<lease_conflict>& all) {
  constexpr size_t shown = 3;
  if (all.empty())
    return "a key is leased by another node";
  std::string out;
  for (size_t i = 0; i < all.size() && i < shown; ++i)
    out += (i == 0 ? "" : "; ")
           + lease_text(printable_key(all[i].key), all[i].owner,
                        all[i].lease_end_us);
  if (all.size() > shown)
    out += "; and " + std::to_string(all.size() - shown) + " more leased key"
           + (all.size() - shown == 1 ? "" : "s");
  return out;
}

} // namespace

lease_error::lease_error(std::string key, node_id owner, uint64_t lease_end_us)
    : key_error(lease_text(key, owner, lease_end_us), errc::lease_held),
      key_(std::move(key)), owner_(std::move(owner)),
      lease_end_us_(lease_end_us), conflicts_{lease_conflict{key_, owner_,
                                                             lease_end_us_}} {}

lease_error::lease_error(std::vector<lease_conflict> conflicts)
    : key_error(conflicts_text(conflicts), errc::lease_held),
      key_(conflicts.empty() ? std::string{}
                             : printable_key(conflicts.front().key)),
      owner_(conflicts.empty() ? node_id{} : conflicts.front().owner),
      lease_end_us_(conflicts.empty() ? 0 : conflicts.front().lease_end_us),
      conflicts_(std::move(conflicts)) {}

} // namespace syncmesh
