#include "node/daemon/http_exchange.hpp"

#include <cstdio>

namespace syncmesh::http {

namespace {

/// The first value of `name` in `pairs`, or nullptr.
const std::string*
find_first(const std::vector<std::pair<std::string, std::string>>& pairs,
           std::string_view name) {
  for (const auto& [key, value] : pairs)
    if (key == name)
      return &value;
  return nullptr;
}

/// Appends `text` as the inside of a JSON string (quotes not included).
void append_json_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", byte);
          out += escaped;
        } else {
          // Bytes >= 0x80 pass through: messages are UTF-8 text we wrote,
          // and a client's bytes quoted in them are not re-encoded here.
          out += c;
        }
    }
  }
}

} // namespace

std::string_view to_string(role r) {
  switch (r) {
    case role::read:
      return "read";
    case role::write:
      return "write";
    case role::admin:
      return "admin";
    default:
      return "none";
  }
}

std::string_view request::header(std::string_view name) const {
  auto* value = find_first(headers, name);
  return value ? std::string_view{*value} : std::string_view{};
}

bool request::has_header(std::string_view name) const {
  return find_first(headers, name) != nullptr;
}

std::string_view request::param(std::string_view name) const {
  auto* value = find_first(query, name);
  return value ? std::string_view{*value} : std::string_view{};
}

bool request::has_param(std::string_view name) const {
  return find_first(query, name) != nullptr;
}

response json_error(int status, std::string_view kind,
                    std::string_view message) {
  response res;
  res.status = status;
  res.content_type = "application/json";
  res.body.reserve(32 + kind.size() + message.size());
  res.body += "{\"error\":\"";
  append_json_escaped(res.body, kind);
  res.body += "\",\"message\":\"";
  append_json_escaped(res.body, message);
  res.body += "\"}";
  return res;
}

} // namespace syncmesh::http
