#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace syncmesh {

class value;

/// A byte string: the representation of keys and of `bytes` values.
using bytes = std::string;

/// True for element types that byte containers may hold.
template <class T>
inline constexpr bool is_byte_like_v
  = std::is_same_v<
      T,
      std::
        byte> || std::is_same_v<T, unsigned char> || std::is_same_v<T, signed char> || std::is_same_v<T, uint8_t>;

/// True for contiguous containers of bytes (std::vector<uint8_t>,
/// std::array<std::byte, N>, ...), which syncmesh treats as raw bytes.
template <class T, class = void>
struct is_byte_container : std::false_type {};

template <class T>
struct is_byte_container<
  T, std::void_t<decltype(std::data(std::declval<const T&>())),
                 decltype(std::size(std::declval<const T&>()))>>
    : std::bool_constant<is_byte_like_v<std::remove_cv_t<std::remove_pointer_t<
        decltype(std::data(std::declval<const T&>()))>>>> {};

/// Copies a byte container into a `bytes` string.
template <class Container>
bytes to_bytes(const Container& xs) {
  auto first = reinterpret_cast<const char*>(std::data(xs));
  return bytes(first, first + std::size(xs));
}

/// A key as syncmesh stores it: raw bytes. Text converts to its UTF-8 bytes,
/// so "k", u8"k" and the bytes {'k'} are one key.
class key_arg {
public:
  /// Wraps text (assumed UTF-8).
  key_arg(const char* text) : bytes_(text) {}
  /// Wraps text (assumed UTF-8).
  key_arg(std::string text) : bytes_(std::move(text)) {}
  /// Wraps text (assumed UTF-8).
  key_arg(std::string_view text) : bytes_(text) {}
#if defined(__cpp_char8_t)
  /// Wraps UTF-8 text.
  key_arg(const char8_t* text) : bytes_(reinterpret_cast<const char*>(text)) {}
  /// Wraps UTF-8 text.
  key_arg(std::u8string_view text)
      : bytes_(reinterpret_cast<const char*>(text.data()), text.size()) {}
#endif
  /// Wraps a byte container.
  template <class Container,
            class = std::enable_if_t<is_byte_container<Container>::value>>
  key_arg(const Container& xs) : bytes_(to_bytes(xs)) {}

  /// The key's bytes.
  const bytes& str() const& noexcept {
    return bytes_;
  }
  /// The key's bytes, moved out.
  bytes&& str() && noexcept {
    return std::move(bytes_);
  }

private:
  bytes bytes_;
};

/// A key of a map value: text or bytes, as in msgpack maps from py2p/js2p.
struct map_key {
  /// Builds the empty text key.
  map_key() = default;
  /// Builds a text key.
  map_key(const char* text) : data(text) {}
  /// Builds a text key.
  map_key(std::string text) : data(std::move(text)) {}
  /// Builds a text key.
  map_key(std::string_view text) : data(text) {}
  /// Builds a bytes key.
  static map_key from_bytes(std::string raw) {
    map_key result{std::move(raw)};
    result.is_text = false;
    return result;
  }

  /// True when the key is text, false when it is raw bytes.
  bool is_text = true;
  /// The key's UTF-8 text or raw bytes.
  std::string data;

  /// Compares kind and content.
  friend bool operator==(const map_key& x, const map_key& y) {
    return x.is_text == y.is_text && x.data == y.data;
  }
  /// Compares kind and content.
  friend bool operator!=(const map_key& x, const map_key& y) {
    return !(x == y);
  }
};

/// msgpack's extension type: a type code and opaque bytes.
struct ext_value {
  /// Application-defined type code (msgpack allows -128..127).
  int8_t type = 0;
  /// The payload.
  bytes data;

  /// Compares type and payload.
  friend bool operator==(const ext_value& x, const ext_value& y) {
    return x.type == y.type && x.data == y.data;
  }
};

struct map_item;

/// The elements of a list value.
using value_list = std::vector<value>;

/// The entries of a map value, in insertion order; keys are unique.
using value_map = std::vector<map_item>;

/// Tag that marks a string as raw bytes rather than text.
struct bytes_tag {};

/// One value of the replicated dictionary: nil, bool, int64, uint64, float64,
/// text, bytes, list, map (text or bytes keys, insertion order kept) or ext,
/// which covers msgpack's data model so py2p/js2p values round-trip.
class value {
public:
  /// The kind of a value.
  enum class kind : uint8_t {
    nil,
    boolean,
    int64,
    uint64,
    float64,
    text,
    bytes,
    list,
    map,
    ext
  };

  /// Builds nil.
  value() noexcept = default;
  /// Builds nil.
  value(std::nullptr_t) noexcept {}
  /// Builds text.
  value(const char* text) : kind_(kind::text), data_(std::string(text)) {}
  /// Builds text.
  value(std::string text) : kind_(kind::text), data_(std::move(text)) {}
  /// Builds text.
  value(std::string_view text) : kind_(kind::text), data_(std::string(text)) {}
#if defined(__cpp_char8_t)
  /// Builds text from UTF-8.
  value(const char8_t* text)
      : value(std::string(reinterpret_cast<const char*>(text))) {}
#endif
  /// Builds bytes.
  value(bytes_tag, std::string raw)
      : kind_(kind::bytes), data_(std::move(raw)) {}
  /// Builds bytes from a byte container.
  template <class Container,
            class = std::enable_if_t<is_byte_container<Container>::value>>
  value(const Container& xs) : kind_(kind::bytes), data_(to_bytes(xs)) {}
  /// Builds a bool.
  value(bool x) noexcept : kind_(kind::boolean), data_(x) {}
  /// Builds an integer: signed types become int64, unsigned ones uint64.
  template <class Int, class = std::enable_if_t<
                         std::is_integral_v<Int> && !std::is_same_v<Int, bool>>>
  value(Int x) noexcept {
    if constexpr (std::is_signed_v<Int> || std::is_same_v<Int, char>) {
      kind_ = kind::int64;
      data_ = static_cast<int64_t>(x);
    } else {
      kind_ = kind::uint64;
      data_ = static_cast<uint64_t>(x);
    }
  }
  /// Builds a float64.
  value(double x) noexcept : kind_(kind::float64), data_(x) {}
  /// Builds a float64.
  value(float x) noexcept : value(static_cast<double>(x)) {}
  /// Builds a list.
  value(value_list xs) : kind_(kind::list), data_(std::move(xs)) {}
  /// Builds a map; later duplicates of a key replace earlier ones.
  value(value_map xs);
  /// Builds a map from {key, value} pairs.
  value(std::initializer_list<std::pair<map_key, value>> xs);
  /// Builds an ext value.
  value(ext_value x) : kind_(kind::ext), data_(std::move(x)) {}

  /// Builds a bytes value from raw bytes.
  static value from_bytes(std::string raw) {
    return value{bytes_tag{}, std::move(raw)};
  }
  /// Builds an empty map.
  static value empty_map() {
    return value{value_map{}};
  }

  /// The kind of this value.
  kind type() const noexcept {
    return kind_;
  }

  bool is_nil() const noexcept {
    return kind_ == kind::nil;
  }
  bool is_bool() const noexcept {
    return kind_ == kind::boolean;
  }
  bool is_int64() const noexcept {
    return kind_ == kind::int64;
  }
  bool is_uint64() const noexcept {
    return kind_ == kind::uint64;
  }
  bool is_float64() const noexcept {
    return kind_ == kind::float64;
  }
  bool is_text() const noexcept {
    return kind_ == kind::text;
  }
  bool is_bytes() const noexcept {
    return kind_ == kind::bytes;
  }
  bool is_list() const noexcept {
    return kind_ == kind::list;
  }
  bool is_map() const noexcept {
    return kind_ == kind::map;
  }
  bool is_ext() const noexcept {
    return kind_ == kind::ext;
  }

  /// The bool; throws syncmesh::type_error for other kinds.
  bool as_bool() const;
  /// The integer as int64 (also from a uint64 that fits); throws type_error.
  int64_t as_int64() const;
  /// The integer as uint64 (also from a non-negative int64); throws type_error.
  uint64_t as_uint64() const;
  /// The float64 (integers convert); throws type_error otherwise.
  double as_float64() const;
  /// The text; throws type_error for other kinds.
  const std::string& as_text() const;
  /// The raw bytes of text or bytes; throws type_error for other kinds.
  const std::string& as_bytes() const;
  /// The list; throws type_error for other kinds.
  const value_list& as_list() const;
  /// The list, mutable; throws type_error for other kinds.
  value_list& as_list();
  /// The map; throws type_error for other kinds.
  const value_map& as_map() const;
  /// The map, mutable; throws type_error for other kinds.
  value_map& as_map();
  /// The ext value; throws type_error for other kinds.
  const ext_value& as_ext() const;

  /// The map's value at a text key, or nullptr (also for non-maps).
  const value* find(std::string_view text_key) const;
  /// The map's value at a text key, or nullptr (also for non-maps).
  const value* find(const char* text_key) const {
    return find(std::string_view{text_key});
  }
  /// The map's value at a key, or nullptr (also for non-maps).
  const value* find(const map_key& key) const;
  /// Sets a map field, keeping the position of an existing key; throws
  /// type_error for non-maps.
  void insert_or_assign(map_key key, value val);

  /// Strict equality: same kind and same content (text and bytes differ).
  friend bool operator==(const value& x, const value& y);
  /// Strict inequality.
  friend bool operator!=(const value& x, const value& y) {
    return !(x == y);
  }
  /// True when `x` is text or bytes with exactly the content `y`.
  friend bool operator==(const value& x, std::string_view y) {
    return (x.is_text() || x.is_bytes()) && std::get<std::string>(x.data_) == y;
  }
  /// True when `x` is text or bytes with exactly the content `y`.
  friend bool operator==(std::string_view y, const value& x) {
    return x == y;
  }
  /// Negation of the content comparison.
  friend bool operator!=(const value& x, std::string_view y) {
    return !(x == y);
  }
  /// True when `x` is text or bytes with exactly the content `y`.
  friend bool operator==(const value& x, const char* y) {
    return x == std::string_view{y};
  }
  /// Negation of the content comparison.
  friend bool operator!=(const value& x, const char* y) {
    return !(x == y);
  }

private:
  kind kind_ = kind::nil;
  std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string,
               value_list, value_map, ext_value>
    data_;
};

/// One entry of a map value.
struct map_item {
  /// The field name.
  map_key key;
  /// The field's value.
  value val;

  /// Compares key and value strictly.
  friend bool operator==(const map_item& x, const map_item& y) {
    return x.key == y.key && x.val == y.val;
  }
};

/// Renders a value in a JSON-like notation for logs and test output; bytes
/// that are not printable ASCII are hex-escaped.
std::string to_string(const value& x);

/// Prints `to_string(x)`.
std::ostream& operator<<(std::ostream& out, const value& x);

/// The name of a value kind ("nil", "map", ...).
const char* to_string(value::kind x);

} // namespace syncmesh
