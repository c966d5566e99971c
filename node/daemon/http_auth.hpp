#pragma once

// The HTTP front's admission rules, as plain classes the server applies
// after reading a request's header and before reading its body:
// - bearer tokens with a role (`--http-token-file`),
// - the Host check against DNS rebinding,
// - the Origin check against cross-site writes from a browser.
// They know nothing of sockets, so unit tests call them directly.

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/daemon/http_exchange.hpp"

namespace syncmesh::http {

/// True when a client granted `granted` may use a route that needs
/// `needed` (roles are ordered: read < write < admin).
bool allows(role granted, role needed);

/// Parses "read", "write" or "admin"; nullopt otherwise.
std::optional<role> parse_role(std::string_view text);

/// The bearer tokens of a token file and the role each grants.
/// File format, one token a line: `<role> <token> [name]`; blank lines and
/// lines starting with '#' are ignored. Tokens are at least
/// `min_token_size` characters (shorter ones are guessable). Only SHA-256
/// digests of the tokens are kept, and a lookup compares the digest of the
/// presented token with every entry in constant time (CRYPTO_memcmp), so
/// neither the position of the first differing byte nor which entry
/// matched shows in the timing.
class token_table {
public:
  /// Shortest token accepted in a token file.
  static constexpr size_t min_token_size = 16;

  /// One line of the file.
  struct entry {
    /// SHA-256 of the token.
    std::array<unsigned char, 32> digest{};
    /// What it grants.
    role granted = role::none;
    /// The optional name (for logs; never the token).
    std::string name;
  };

  /// Parses a token file's text; on error returns false and sets `error`
  /// to "line N: why" (the token itself never appears in it).
  bool parse(std::string_view text, std::string& error);

  /// Reads and parses the file at `path`; the error names the file.
  bool load_file(const std::string& path, std::string& error);

  /// The role `token` grants, or nullopt when it is unknown.
  std::optional<role> lookup(std::string_view token) const;

  /// The name of the entry `token` matches (empty when unknown/unnamed).
  std::string name_of(std::string_view token) const;

  /// Number of tokens.
  size_t size() const { return entries_.size(); }

private:
  const entry* find(std::string_view token) const;

  std::vector<entry> entries_;
};

/// The token of an `Authorization: Bearer <token>` header value; empty
/// when the scheme is not Bearer (case-insensitive) or the token is empty.
std::string_view bearer_token(std::string_view authorization);

/// Splits a Host header value into host and port ("[::1]:80" -> "::1",
/// "80"); false when it is malformed (empty, bad brackets, bad port).
bool split_host_port(std::string_view value, std::string& host,
                     std::string& port);

/// True when `host` (without port or brackets) is an IPv4 or IPv6 literal.
bool is_ip_literal(std::string_view host);

/// The Host check against DNS rebinding: a browser tricked into sending a
/// request to our address under an attacker's DNS name carries that name
/// in Host, so only our own names are accepted. IP literals are always
/// accepted (rebinding needs a name the attacker controls).
class host_policy {
public:
  /// `names`: the accepted DNS names (compared case-insensitively, a
  /// trailing dot ignored), e.g. localhost, the machine's hostname, the
  /// bound address, and the operator's `allowed_hosts`.
  explicit host_policy(std::vector<std::string> names = {});

  /// Adds one accepted name.
  void add(std::string_view name);

  /// True when the Host header value `value` (with optional port) is
  /// acceptable.
  bool allows(std::string_view value) const;

  /// The accepted names (lower case).
  const std::vector<std::string>& names() const { return names_; }

private:
  std::vector<std::string> names_;
};

/// True when `method` cannot change anything (GET, HEAD, OPTIONS), so a
/// cross-origin request is harmless: the browser hides the answer from
/// the page because no CORS header is ever sent.
bool is_safe_method(std::string_view method);

/// The Origin check against cross-site writes: a request carrying `origin`
/// (empty: no Origin header, e.g. curl or a server) with an unsafe method
/// is accepted only when the origin is this server itself
/// (`scheme://host` where host is the request's Host header value, scheme
/// "https" when `secure`) or is listed in `allowed_origins` (exact,
/// case-insensitive, e.g. "https://dash.example.com").
bool origin_allows(std::string_view method, std::string_view origin,
                   std::string_view host_header, bool secure,
                   const std::vector<std::string>& allowed_origins);

} // namespace syncmesh::http
