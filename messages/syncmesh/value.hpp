#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace syncmesh {

class value;

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

/// See the primary template.
template <class T>
struct is_byte_container<
  T, std::void_t<decltype(std::data(std::declval<const T&>())),
                 decltype(std::size(std::declval<const T&>()))>>
    : std::bool_constant<is_byte_like_v<std::remove_cv_t<std::remove_pointer_t<
        decltype(std::data(std::declval<const T&>()))>>>> {};

/// A byte string that is not text: msgpack's bin, Python's `bytes`. A type
/// of its own (not std::string), so `value(bytes{...})` is always a bytes
/// value and text never turns into bytes, or bytes into text, by accident:
/// every conversion from a string is explicit (`bytes::from(s)`).
class bytes {
public:
  /// The empty byte string.
  bytes() = default;
  /// The bytes of `raw` (explicit: a std::string is text unless you say).
  explicit bytes(std::string raw) noexcept : raw_(std::move(raw)) {}
  /// `size` bytes from `data`.
  bytes(const char* data, size_t size) : raw_(data, size) {}
  /// Bytes written out: `bytes{0x00, 0xff, 'k'}`.
  bytes(std::initializer_list<uint8_t> xs) : raw_(xs.begin(), xs.end()) {}
  /// A copy of a byte container (std::vector<uint8_t>, std::array<std::byte,
  /// N>, ...).
  template <class Container,
            class = std::enable_if_t<is_byte_container<Container>::value>>
  explicit bytes(const Container& xs)
      : raw_(reinterpret_cast<const char*>(std::data(xs)), std::size(xs)) {}

  /// The bytes of `raw`, named: `bytes::from("\x01\x02")`.
  static bytes from(std::string_view raw) { return bytes{std::string{raw}}; }

  /// The bytes, viewed (valid while this object lives unchanged).
  std::string_view view() const noexcept { return raw_; }
  /// The bytes as a std::string.
  const std::string& str() const& noexcept { return raw_; }
  /// The bytes as a std::string, moved out of a temporary.
  std::string str() && noexcept { return std::move(raw_); }
  /// The first byte.
  const char* data() const noexcept { return raw_.data(); }
  /// The number of bytes.
  size_t size() const noexcept { return raw_.size(); }
  /// True when there are no bytes.
  bool empty() const noexcept { return raw_.empty(); }

  /// Bytewise equality.
  friend bool operator==(const bytes& x, const bytes& y) noexcept {
    return x.raw_ == y.raw_;
  }
  /// Bytewise inequality.
  friend bool operator!=(const bytes& x, const bytes& y) noexcept {
    return x.raw_ != y.raw_;
  }
  /// Bytewise order.
  friend bool operator<(const bytes& x, const bytes& y) noexcept {
    return x.raw_ < y.raw_;
  }

private:
  std::string raw_;
};

/// Renders bytes as `b"..."`, escaping what is not printable ASCII.
std::string to_string(const bytes& x);

/// Prints `to_string(x)`.
std::ostream& operator<<(std::ostream& out, const bytes& x);

/// Copies a byte container into `bytes`.
template <class Container>
bytes to_bytes(const Container& xs) {
  return bytes{xs};
}

/// A key as syncmesh stores it: raw bytes. Text converts to its UTF-8 bytes,
/// so "k", u8"k" and bytes{'k'} are one key.
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
  /// Wraps bytes.
  key_arg(const bytes& raw) : bytes_(raw.str()) {}
  /// Wraps bytes.
  key_arg(bytes&& raw) : bytes_(std::move(raw).str()) {}
  /// Wraps a byte container.
  template <class Container,
            class = std::enable_if_t<is_byte_container<Container>::value>>
  key_arg(const Container& xs) : bytes_(bytes{xs}.str()) {}

  /// The key's bytes.
  const std::string& str() const& noexcept {
    return bytes_;
  }
  /// The key's bytes, moved out of a temporary (never a reference into it).
  std::string str() && noexcept {
    return std::move(bytes_);
  }

private:
  std::string bytes_;
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
  map_key(const bytes& raw) : is_text(false), data(raw.str()) {}
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
  /// The payload: raw bytes (an ext value is never text).
  std::string data;

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

namespace detail {

/// True for a std::pair.
template <class T>
struct is_pair : std::false_type {};

/// See the primary template.
template <class K, class V>
struct is_pair<std::pair<K, V>> : std::true_type {};

/// True for types with std::begin and std::end.
template <class T, class = void>
struct is_range : std::false_type {};

/// See the primary template.
template <class T>
struct is_range<T, std::void_t<decltype(std::begin(std::declval<const T&>())),
                               decltype(std::end(std::declval<const T&>()))>>
    : std::true_type {};

/// The element type of a range.
template <class T>
using range_element_t = std::remove_cv_t<
  std::remove_reference_t<decltype(*std::begin(std::declval<const T&>()))>>;

/// True for a pair `{key, value}` that can be a field of a map value: the
/// key is text or bytes, the value converts to `value`.
template <class E, bool = is_pair<E>::value>
struct is_map_field : std::false_type {};

/// See the primary template.
template <class E>
struct is_map_field<E, true>
    : std::conjunction<
        std::is_constructible<map_key, const typename E::first_type&>,
        std::is_constructible<value, const typename E::second_type&>> {};

/// True for an element of a list value: anything that converts to `value`
/// except pairs (those make maps) and plain chars (text or numbers? a
/// std::vector<char> says neither, so it is refused).
template <class E>
struct is_list_element
    : std::conjunction<std::negation<is_pair<E>>,
                       std::negation<std::is_same<E, char>>,
                       std::is_constructible<value, const E&>> {};

/// The range kinds `value` converts: any range of values (a list) or of
/// {text or bytes, value} pairs (a map), but not what has a meaning of its
/// own (strings are text, byte containers are bytes) nor value_list or
/// value_map themselves.
template <class R, class Value, bool = is_range<R>::value>
struct is_value_range : std::false_type {};

/// See the primary template.
template <class R, class Value>
struct is_value_range<R, Value, true>
    : std::conjunction<
        std::negation<std::is_same<R, Value>>,
        std::negation<std::is_same<R, std::vector<Value>>>,
        std::negation<std::is_same<R, bytes>>,
        std::negation<std::is_convertible<const R&, std::string_view>>,
        std::negation<is_byte_container<R>>,
        std::disjunction<is_map_field<range_element_t<R>>,
                         is_list_element<range_element_t<R>>>> {};

} // namespace detail

/// One value of the replicated dictionary: nil, bool, int64, uint64, float64,
/// text, bytes, list, map (text or bytes keys, insertion order kept) or ext,
/// which covers msgpack's data model so py2p/js2p values round-trip.
///
/// Values write like Python literals:
///
///     value a = {1, 2, 3};                       // [1, 2, 3]
///     value m = {{"a", 1}, {"b", {1, 2}}};       // {"a": 1, "b": [1, 2]}
///     value v = std::vector<int>{1, 2};          // any range of values: list
///     value d = std::map<std::string, int>{};    // any range of pairs: map
///     value b = bytes{0x00, 0xff};               // bytes, never text
///
/// The rule for braces: a braced list is a map when every element is
/// itself a braced pair `{key, value}` whose key is text or bytes; a braced
/// list of one element is that element (`{"x"}` is the text "x", as `int{1}`
/// is 1); any other braced list is a list. So `{{"a", 1}}` is the map
/// {"a": 1}, and a list of pairs or of one element is written
/// `value::list({{"a", 1}})` or `value_list{{"a", 1}}`; `value::map({...})`
/// always makes a map. `{}` is nil.
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
  /// Copies kind and content.
  value(const value& x) : kind_(x.kind_), data_(x.data_) {}
  /// Moves kind and content.
  value(value&& x) noexcept : kind_(x.kind_), data_(std::move(x.data_)) {}
  /// Copies kind and content.
  value& operator=(const value& x) {
    kind_ = x.kind_;
    data_ = x.data_;
    braced_pair_ = false;
    return *this;
  }
  /// Moves kind and content.
  value& operator=(value&& x) noexcept {
    kind_ = x.kind_;
    data_ = std::move(x.data_);
    braced_pair_ = false;
    return *this;
  }

  /// Builds nil.
  value(std::nullptr_t) noexcept {}
  /// Builds text.
  value(const char* text) : kind_(kind::text), data_(std::string(text)) {}
  /// Builds text.
  value(char* text) : value(static_cast<const char*>(text)) {}
  /// Builds text.
  value(std::string text) : kind_(kind::text), data_(std::move(text)) {}
  /// Builds text.
  value(std::string_view text) : kind_(kind::text), data_(std::string(text)) {}
#if defined(__cpp_char8_t)
  /// Builds text from UTF-8.
  value(const char8_t* text)
      : value(std::string(reinterpret_cast<const char*>(text))) {}
#endif
  /// No value from any other pointer: it would silently be a bool (the
  /// pointer's null test). Dereference it, or pass text as const char*.
  template <class T>
  value(T*) = delete;
  /// Builds bytes.
  value(bytes raw) : kind_(kind::bytes), data_(std::move(raw).str()) {}
  /// Builds the text or bytes of a map key (so `{map_key::from_bytes(k), v}`
  /// is a field in braces).
  value(map_key key)
      : kind_(key.is_text ? kind::text : kind::bytes),
        data_(std::move(key.data)) {}
  /// Builds bytes.
  value(bytes_tag, std::string raw)
      : kind_(kind::bytes), data_(std::move(raw)) {}
  /// Builds bytes from a byte container (std::vector<uint8_t>, ...).
  template <class Container,
            class = std::enable_if_t<is_byte_container<Container>::value>>
  value(const Container& xs) : kind_(kind::bytes), data_(bytes{xs}.str()) {}
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
  /// Builds a list, a map or the one element, by the rule for braces in
  /// the class comment.
  value(std::initializer_list<value> xs);
  /// Builds a list from any range of values (std::vector<int>,
  /// std::list<std::string>, nested ranges, ...) or a map from any range of
  /// {text or bytes, value} pairs (std::map<std::string, int>,
  /// std::unordered_map, std::vector<std::pair<std::string, T>>, ...), in
  /// the range's order; later duplicates of a key replace earlier ones.
  template <
    class Range,
    std::enable_if_t<detail::is_value_range<Range, value>::value, int> = 0>
  value(const Range& xs) {
    if constexpr (detail::is_pair<detail::range_element_t<Range>>::value) {
      kind_ = kind::map;
      data_ = value_map{};
      for (const auto& [key, val] : xs)
        insert_or_assign(map_key(key), value(val));
    } else {
      value_list items;
      for (const auto& x : xs)
        items.emplace_back(x);
      kind_ = kind::list;
      data_ = std::move(items);
    }
  }
  /// Builds an ext value.
  value(ext_value x) : kind_(kind::ext), data_(std::move(x)) {}

  /// Builds a list, also of one element or of pairs: `value::list({x})`.
  static value list(std::initializer_list<value> xs) {
    return value(value_list(xs));
  }
  /// Builds a map from {key, value} fields: `value::map({{"a", 1}})`.
  static value map(std::initializer_list<map_item> xs);
  /// Builds a bytes value from raw bytes.
  static value from_bytes(std::string raw) {
    return value{bytes_tag{}, std::move(raw)};
  }
  /// Builds an empty map.
  static value empty_map() {
    return value(value_map{});
  }

  /// The kind of this value.
  kind type() const noexcept {
    return kind_;
  }

  /// True for nil.
  bool is_nil() const noexcept {
    return kind_ == kind::nil;
  }
  /// True for a bool.
  bool is_bool() const noexcept {
    return kind_ == kind::boolean;
  }
  /// True for an int64.
  bool is_int64() const noexcept {
    return kind_ == kind::int64;
  }
  /// True for a uint64.
  bool is_uint64() const noexcept {
    return kind_ == kind::uint64;
  }
  /// True for a float64.
  bool is_float64() const noexcept {
    return kind_ == kind::float64;
  }
  /// True for text.
  bool is_text() const noexcept {
    return kind_ == kind::text;
  }
  /// True for bytes.
  bool is_bytes() const noexcept {
    return kind_ == kind::bytes;
  }
  /// True for a list.
  bool is_list() const noexcept {
    return kind_ == kind::list;
  }
  /// True for a map.
  bool is_map() const noexcept {
    return kind_ == kind::map;
  }
  /// True for an ext value.
  bool is_ext() const noexcept {
    return kind_ == kind::ext;
  }

  // Accessors of content come in pairs: on a named value they return a
  // reference into it; on a temporary (`sock.at(k).as_text()`) they return
  // the content by value, so `const auto& t = sock.at(k).as_text();` holds
  // its own string instead of a reference into a destroyed value.

  /// The bool; throws syncmesh::type_error for other kinds.
  bool as_bool() const;
  /// The integer as int64 (also from a uint64 that fits); throws type_error.
  int64_t as_int64() const;
  /// The integer as uint64 (also from a non-negative int64); throws type_error.
  uint64_t as_uint64() const;
  /// The float64 (integers convert); throws type_error otherwise.
  double as_float64() const;
  /// The text; throws type_error for other kinds.
  const std::string& as_text() const&;
  /// The text of a temporary, moved out; throws type_error for other kinds.
  std::string as_text() &&;
  /// The raw bytes of text or bytes; throws type_error for other kinds.
  const std::string& as_bytes() const&;
  /// The raw bytes of a temporary's text or bytes, moved out.
  std::string as_bytes() &&;
  /// The list; throws type_error for other kinds.
  const value_list& as_list() const&;
  /// The list, mutable; throws type_error for other kinds.
  value_list& as_list() &;
  /// The list of a temporary, moved out; throws type_error for other kinds.
  value_list as_list() &&;
  /// The map; throws type_error for other kinds.
  const value_map& as_map() const&;
  /// The map, mutable; throws type_error for other kinds.
  value_map& as_map() &;
  /// The map of a temporary, moved out; throws type_error for other kinds.
  value_map as_map() &&;
  /// The ext value; throws type_error for other kinds.
  const ext_value& as_ext() const&;
  /// The ext value of a temporary, moved out.
  ext_value as_ext() &&;

  /// The map's value at a text key, or nullptr (also for non-maps).
  const value* find(std::string_view text_key) const&;
  /// The map's value at a text key, or nullptr (also for non-maps).
  const value* find(const std::string& text_key) const& {
    return find(std::string_view{text_key});
  }
  /// The map's value at a text key, or nullptr (also for non-maps).
  const value* find(const char* text_key) const& {
    return find(std::string_view{text_key});
  }
  /// The map's value at a text or bytes key, or nullptr (also for non-maps).
  const value* find(const map_key& key) const&;
  /// What `find` gives on a temporary value: a copy of the field (or
  /// nothing), used as the pointer `find` returns on a named value.
  class owned_field;
  /// The field at a text key of a temporary map, copied out of it (a
  /// pointer into the temporary would dangle at the semicolon).
  owned_field find(std::string_view text_key) &&;
  /// The field at a text key of a temporary map, copied out of it.
  owned_field find(const std::string& text_key) &&;
  /// The field at a text key of a temporary map, copied out of it.
  owned_field find(const char* text_key) &&;
  /// The field at a key of a temporary map, copied out of it.
  owned_field find(const map_key& key) &&;
  /// True when the map has a field at `text_key` (false for non-maps).
  bool contains(std::string_view text_key) const {
    return find(text_key) != nullptr;
  }
  /// True when the map has a field at `text_key` (false for non-maps).
  bool contains(const std::string& text_key) const {
    return find(text_key) != nullptr;
  }
  /// True when the map has a field at `text_key` (false for non-maps).
  bool contains(const char* text_key) const {
    return find(text_key) != nullptr;
  }
  /// True when the map has a field at `key` (false for non-maps).
  bool contains(const map_key& key) const {
    return find(key) != nullptr;
  }
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
  /// True when `x` is text or bytes with exactly the content `y`.
  friend bool operator==(const value& x, const std::string& y) {
    return x == std::string_view{y};
  }
  /// Negation of the content comparison.
  friend bool operator!=(const value& x, const std::string& y) {
    return !(x == y);
  }

private:
  kind kind_ = kind::nil;
  // Set only on a value made from braces `{text or bytes, value}`, while it
  // is an element of the enclosing braced list (copies clear it): the rule
  // for braces asks how an element was written, not what it holds, so that
  // `{value_list{"a", 1}}` stays a list.
  bool braced_pair_ = false;
  std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string,
               value_list, value_map, ext_value>
    data_;
};

/// What `value::find` returns on a temporary value: the field, copied out
/// of it, or nothing. It reads like the pointer `find` returns on a named
/// value (`*f`, `f->`, `f == nullptr`, `if (f)`) but owns its value, so
/// `auto f = sock.at(k).find("x");` is safe; it does not convert to
/// `const value*`, so a pointer into the temporary cannot be kept.
class value::owned_field {
public:
  /// Nothing found.
  owned_field() = default;
  /// A copy of `*x`, or nothing when `x` is null.
  explicit owned_field(const value* x) {
    if (x != nullptr)
      found_ = *x;
  }

  /// True when the field exists.
  explicit operator bool() const noexcept { return found_.has_value(); }
  /// The field (the field must exist).
  const value& operator*() const& { return *found_; }
  /// The field, moved out of a temporary (the field must exist).
  value operator*() && { return std::move(*found_); }
  /// The field's members (the field must exist).
  const value* operator->() const { return &*found_; }

  /// True when nothing was found.
  friend bool operator==(const owned_field& x, std::nullptr_t) noexcept {
    return !x;
  }
  /// True when nothing was found.
  friend bool operator==(std::nullptr_t, const owned_field& x) noexcept {
    return !x;
  }
  /// True when the field exists.
  friend bool operator!=(const owned_field& x, std::nullptr_t) noexcept {
    return static_cast<bool>(x);
  }
  /// True when the field exists.
  friend bool operator!=(std::nullptr_t, const owned_field& x) noexcept {
    return static_cast<bool>(x);
  }
  /// Prints the field, or "nothing".
  friend std::ostream& operator<<(std::ostream& out, const owned_field& x);

private:
  std::optional<value> found_;
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
