#include "node/daemon/http_auth.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace syncmesh::http {

namespace {

std::string lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty()
         && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
    text.remove_suffix(1);
  return text;
}

std::array<unsigned char, 32> sha256(std::string_view text) {
  std::array<unsigned char, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
         out.data());
  return out;
}

/// A name without its trailing dot, lower case ("Example.COM." ->
/// "example.com").
std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.')
    name.remove_suffix(1);
  return lower(name);
}

} // namespace

bool allows(role granted, role needed) {
  return static_cast<int>(granted) >= static_cast<int>(needed);
}

std::optional<role> parse_role(std::string_view text) {
  if (text == "read")
    return role::read;
  if (text == "write")
    return role::write;
  if (text == "admin")
    return role::admin;
  return std::nullopt;
}

bool token_table::parse(std::string_view text, std::string& error) {
  std::vector<entry> parsed;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto end = text.find('\n');
    auto line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view{}
                                         : text.substr(end + 1);
    if (line.empty() || line.front() == '#')
      continue;
    std::vector<std::string_view> words;
    while (!line.empty()) {
      auto stop = line.find_first_of(" \t");
      words.push_back(line.substr(0, stop));
      line = stop == std::string_view::npos ? std::string_view{}
                                            : trim(line.substr(stop));
    }
    auto where = "line " + std::to_string(line_no) + ": ";
    if (words.size() < 2 || words.size() > 3) {
      error = where + "expected `<role> <token> [name]`";
      return false;
    }
    auto granted = parse_role(words[0]);
    if (!granted) {
      error = where + "unknown role \"" + std::string{words[0]}
              + "\" (read, write or admin)";
      return false;
    }
    if (words[1].size() < min_token_size) {
      error = where + "token shorter than " + std::to_string(min_token_size)
              + " characters";
      return false;
    }
    entry e;
    e.digest = sha256(words[1]);
    e.granted = *granted;
    if (words.size() == 3)
      e.name = std::string{words[2]};
    for (const auto& other : parsed) {
      if (other.digest == e.digest) {
        error = where + "token listed twice";
        return false;
      }
    }
    parsed.push_back(std::move(e));
  }
  entries_ = std::move(parsed);
  return true;
}

bool token_table::load_file(const std::string& path, std::string& error) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    error
      = "--http-token-file: cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string why;
  if (!parse(text.str(), why)) {
    error = "--http-token-file: " + path + ": " + why;
    return false;
  }
  return true;
}

const token_table::entry* token_table::find(std::string_view token) const {
  // Every entry is compared, whatever matched, so the time does not say
  // which entry (if any) matched.
  auto digest = sha256(token);
  const entry* match = nullptr;
  for (const auto& e : entries_) {
    bool same
      = CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0;
    match = same ? &e : match;
  }
  return match;
}

std::optional<role> token_table::lookup(std::string_view token) const {
  if (token.empty())
    return std::nullopt;
  auto* e = find(token);
  if (!e)
    return std::nullopt;
  return e->granted;
}

std::string token_table::name_of(std::string_view token) const {
  auto* e = find(token);
  return e ? e->name : std::string{};
}

std::string_view bearer_token(std::string_view authorization) {
  authorization = trim(authorization);
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size()
      || !iequals(authorization.substr(0, scheme.size()), scheme)
      || (authorization[scheme.size()] != ' '
          && authorization[scheme.size()] != '\t'))
    return {};
  return trim(authorization.substr(scheme.size()));
}

bool split_host_port(std::string_view value, std::string& host,
                     std::string& port) {
  value = trim(value);
  if (value.empty())
    return false;
  std::string_view rest;
  if (value.front() == '[') {
    auto close = value.find(']');
    if (close == std::string_view::npos || close == 1)
      return false;
    host = std::string{value.substr(1, close - 1)};
    rest = value.substr(close + 1);
    if (!is_ip_literal(host) || host.find(':') == std::string::npos)
      return false; // brackets hold an IPv6 literal only
  } else {
    auto colon = value.find(':');
    host = std::string{value.substr(0, colon)};
    rest = colon == std::string_view::npos ? std::string_view{}
                                           : value.substr(colon);
    if (host.empty())
      return false;
    for (char c : host) {
      auto u = static_cast<unsigned char>(c);
      if (!std::isalnum(u) && c != '-' && c != '.' && c != '_')
        return false;
    }
  }
  port.clear();
  if (!rest.empty()) {
    if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6)
      return false;
    rest.remove_prefix(1);
    for (char c : rest)
      if (!std::isdigit(static_cast<unsigned char>(c)))
        return false;
    port = std::string{rest};
  }
  return true;
}

bool is_ip_literal(std::string_view host) {
  std::string text{host};
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1
         || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

host_policy::host_policy(std::vector<std::string> names) {
  for (const auto& name : names)
    add(name);
}

void host_policy::add(std::string_view name) {
  auto normalized = normalize_name(name);
  if (!normalized.empty()
      && std::find(names_.begin(), names_.end(), normalized) == names_.end())
    names_.push_back(std::move(normalized));
}

bool host_policy::allows(std::string_view value) const {
  std::string host;
  std::string port;
  if (!split_host_port(value, host, port))
    return false;
  if (is_ip_literal(host))
    return true;
  auto normalized = normalize_name(host);
  return std::find(names_.begin(), names_.end(), normalized) != names_.end();
}

bool is_safe_method(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS";
}

namespace {

/// "scheme://host[:port]" in lower case with the scheme's default port
/// dropped, or empty when `origin` is not of that form.
std::string canonical_origin(std::string_view origin) {
  auto sep = origin.find("://");
  if (sep == std::string_view::npos)
    return {};
  auto scheme = lower(origin.substr(0, sep));
  if (scheme != "http" && scheme != "https")
    return {};
  std::string host;
  std::string port;
  if (!split_host_port(origin.substr(sep + 3), host, port))
    return {};
  if ((scheme == "http" && port == "80")
      || (scheme == "https" && port == "443"))
    port.clear();
  auto out = scheme + "://";
  auto name = lower(host);
  out += name.find(':') != std::string::npos ? "[" + name + "]" : name;
  if (!port.empty())
    out += ":" + port;
  return out;
}

} // namespace

bool origin_allows(std::string_view method, std::string_view origin,
                   std::string_view host_header, bool secure,
                   const std::vector<std::string>& allowed_origins) {
  origin = trim(origin);
  if (origin.empty() || is_safe_method(method))
    return true;
  auto presented = canonical_origin(origin);
  if (presented.empty())
    return false; // "null" (sandboxed page, file://) or garbage
  auto self = canonical_origin(std::string{secure ? "https://" : "http://"}
                               + std::string{trim(host_header)});
  if (!self.empty() && presented == self)
    return true;
  for (const auto& allowed : allowed_origins)
    if (canonical_origin(allowed) == presented)
      return true;
  return false;
}

} // namespace syncmesh::http
