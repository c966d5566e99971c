#include "node/daemon/json_value.hpp"

#include <nlohmann/json.hpp>

#include "messages/hex_text.hpp"
#include "messages/value_proto.hpp"
#include "messages/version.hpp"

namespace syncmesh {

namespace {

constexpr char b64_digits[]
  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr const char* bytes_marker = "$base64";
constexpr const char* ext_marker = "$ext";
constexpr const char* bytes_key_prefix = "$base64:";

} // namespace

std::string base64_encode(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) {
    return static_cast<unsigned char>(bytes[k]);
  };
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += b64_digits[(n >> 18) & 63];
    out += b64_digits[(n >> 12) & 63];
    out += b64_digits[(n >> 6) & 63];
    out += b64_digits[n & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t n = at(i) << 16;
    out += b64_digits[(n >> 18) & 63];
    out += b64_digits[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t n = (at(i) << 16) | (at(i + 1) << 8);
    out += b64_digits[(n >> 18) & 63];
    out += b64_digits[(n >> 12) & 63];
    out += b64_digits[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

bool base64_decode(const std::string& text, std::string& out) {
  if (text.size() % 4 != 0)
    return false;
  out.clear();
  auto digit = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '+')
      return 62;
    if (c == '/')
      return 63;
    return -1;
  };
  for (size_t i = 0; i < text.size(); i += 4) {
    int pad = 0;
    uint32_t n = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        ++pad;
        n <<= 6;
        continue;
      }
      auto d = digit(c);
      if (d < 0 || pad > 0)
        return false;
      n = (n << 6) | static_cast<uint32_t>(d);
    }
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2)
      out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1)
      out += static_cast<char>(n & 0xff);
  }
  return true;
}

bool from_hex(const std::string& hex, std::string& out) {
  // Any node ID a node may have: a native one (15 bytes) or a py2p-mode
  // one (65-66 base58 characters, 130-132 hex digits), up to the bound
  // every node ID obeys, so hostile input is still refused.
  return syncmesh::from_hex(hex, out, max_node_id_size);
}

bool is_utf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80         ? 1
                 : (c >> 5) == 6  ? 2
                 : (c >> 4) == 14 ? 3
                 : (c >> 3) == 30 ? 4
                                  : 0;
    if (len == 0 || i + len > text.size())
      return false;
    uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc >> 6) != 2)
        return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
        || (len == 4 && cp < 0x10000) || cp > 0x10ffff
        || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

nlohmann::json to_json(const value& x) {
  using nlohmann::json;
  switch (x.type()) {
    case value::kind::nil:
      return nullptr;
    case value::kind::boolean:
      return x.as_bool();
    case value::kind::int64:
      return x.as_int64();
    case value::kind::uint64:
      return x.as_uint64();
    case value::kind::float64:
      return x.as_float64();
    case value::kind::text:
      return x.as_text();
    case value::kind::bytes:
      return json{{bytes_marker, base64_encode(x.as_bytes())}};
    case value::kind::list: {
      auto result = json::array();
      for (const auto& item : x.as_list())
        result.push_back(to_json(item));
      return result;
    }
    case value::kind::map: {
      auto result = json::object();
      for (const auto& item : x.as_map()) {
        auto key = item.key.is_text
                     ? item.key.data
                     : bytes_key_prefix + base64_encode(item.key.data);
        result[key] = to_json(item.val);
      }
      return result;
    }
    case value::kind::ext:
      return json{{ext_marker, x.as_ext().type},
                  {bytes_marker, base64_encode(x.as_ext().data)}};
  }
  return nullptr;
}

namespace {

std::string read(const nlohmann::json& x, value& out, int depth, int max) {
  if (depth > max)
    return "JSON nests deeper than " + std::to_string(max) + " levels";
  switch (x.type()) {
    case nlohmann::json::value_t::null:
      out = value{};
      return {};
    case nlohmann::json::value_t::boolean:
      out = value(x.get<bool>());
      return {};
    case nlohmann::json::value_t::number_integer:
      out = value(x.get<int64_t>());
      return {};
    case nlohmann::json::value_t::number_unsigned: {
      auto u = x.get<uint64_t>();
      out = u <= static_cast<uint64_t>(INT64_MAX)
              ? value(static_cast<int64_t>(u))
              : value(u);
      return {};
    }
    case nlohmann::json::value_t::number_float:
      out = value(x.get<double>());
      return {};
    case nlohmann::json::value_t::string:
      out = value(x.get<std::string>());
      return {};
    case nlohmann::json::value_t::array: {
      value_list items;
      for (const auto& item : x) {
        value v;
        if (auto err = read(item, v, depth + 1, max); !err.empty())
          return err;
        items.push_back(std::move(v));
      }
      out = value(std::move(items));
      return {};
    }
    case nlohmann::json::value_t::object: {
      if (x.size() == 1 && x.contains(bytes_marker)
          && x[bytes_marker].is_string()) {
        std::string raw;
        if (!base64_decode(x[bytes_marker].get<std::string>(), raw))
          return "malformed base64 in $base64";
        out = value::from_bytes(std::move(raw));
        return {};
      }
      if (x.size() == 2 && x.contains(ext_marker) && x.contains(bytes_marker)) {
        std::string raw;
        if (!x[ext_marker].is_number_integer() || !x[bytes_marker].is_string()
            || !base64_decode(x[bytes_marker].get<std::string>(), raw))
          return "malformed $ext value";
        auto type = x[ext_marker].get<int64_t>();
        if (type < -128 || type > 127)
          return "$ext type out of range";
        out = value(ext_value{static_cast<int8_t>(type), std::move(raw)});
        return {};
      }
      out = value::empty_map();
      for (const auto& [key, item] : x.items()) {
        value v;
        if (auto err = read(item, v, depth + 1, max); !err.empty())
          return err;
        map_key k{key};
        if (key.rfind(bytes_key_prefix, 0) == 0) {
          std::string raw;
          if (!base64_decode(key.substr(std::string{bytes_key_prefix}.size()),
                             raw))
            return "malformed base64 map key";
          k = map_key::from_bytes(std::move(raw));
        }
        out.insert_or_assign(std::move(k), std::move(v));
      }
      return {};
    }
    default:
      return "unsupported JSON value";
  }
}

} // namespace

std::string from_json(const nlohmann::json& x, value& out, int max_depth) {
  return read(x, out, 0, max_depth);
}

void put_key(nlohmann::json& obj, const std::string& key) {
  if (is_utf8(key))
    obj["key"] = key;
  else
    obj["key_base64"] = base64_encode(key);
}

bool json_nested_deeper_than(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i; // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth)
          return true;
        break;
      case ']':
      case '}':
        if (depth > 0)
          --depth;
        break;
      default:
        break;
    }
  }
  return false;
}

} // namespace syncmesh
