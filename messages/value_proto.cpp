#include "messages/value_proto.hpp"

#include <cstring>
#include <string_view>
#include <unordered_set>

#include "messages/keyed_hash.hpp"
#include "syncmesh/pb/value.pb.h"

namespace syncmesh {

void to_proto(const map_key& x, pb::MapKey* out) {
  if (x.is_text)
    out->set_text(x.data);
  else
    out->set_bytes(x.data);
}

void to_proto(const value_map& x, pb::MapValue* out) {
  auto* entries = out->mutable_entries();
  entries->Reserve(static_cast<int>(x.size()));
  for (const auto& item : x) {
    auto* entry = entries->Add();
    to_proto(item.key, entry->mutable_key());
    to_proto(item.val, entry->mutable_value());
  }
}

void to_proto(const value& x, pb::Value* out) {
  switch (x.type()) {
    case value::kind::nil:
      out->mutable_nil();
      break;
    case value::kind::boolean:
      out->set_boolean(x.as_bool());
      break;
    case value::kind::int64:
      out->set_int64(x.as_int64());
      break;
    case value::kind::uint64:
      out->set_uint64(x.as_uint64());
      break;
    case value::kind::float64:
      out->set_float64(x.as_float64());
      break;
    case value::kind::text:
      out->set_text(x.as_text());
      break;
    case value::kind::bytes:
      out->set_bytes(x.as_bytes());
      break;
    case value::kind::list: {
      auto* items = out->mutable_list()->mutable_items();
      items->Reserve(static_cast<int>(x.as_list().size()));
      for (const auto& item : x.as_list())
        to_proto(item, items->Add());
      break;
    }
    case value::kind::map:
      to_proto(x.as_map(), out->mutable_map());
      break;
    case value::kind::ext: {
      auto* ext = out->mutable_ext();
      ext->set_type(x.as_ext().type);
      ext->set_data(x.as_ext().data);
      break;
    }
  }
}

std::string from_proto(const pb::MapKey& x, map_key& out) {
  switch (x.kind_case()) {
    case pb::MapKey::kText:
      out = map_key{x.text()};
      return {};
    case pb::MapKey::kBytes:
      out = map_key::from_bytes(x.bytes());
      return {};
    default:
      return "map key is neither text nor bytes";
  }
}

namespace {

std::string read_value(const pb::Value& x, value& out, int depth, int max);

std::string read_map(const pb::MapValue& x, value_map& out, int depth,
                     int max) {
  out.clear();
  out.reserve(static_cast<size_t>(x.entries_size()));
  std::unordered_set<std::string, keyed_hasher> seen;
  for (const auto& entry : x.entries()) {
    map_key key;
    if (auto err = from_proto(entry.key(), key); !err.empty())
      return err;
    if (!seen.insert((key.is_text ? 't' : 'b') + key.data).second)
      return "map has a duplicate key";
    value val;
    if (auto err = read_value(entry.value(), val, depth + 1, max); !err.empty())
      return err;
    out.push_back(map_item{std::move(key), std::move(val)});
  }
  return {};
}

std::string read_value(const pb::Value& x, value& out, int depth, int max) {
  if (depth > max)
    return "value nests deeper than " + std::to_string(max) + " levels";
  switch (x.kind_case()) {
    case pb::Value::kNil:
      out = value{};
      return {};
    case pb::Value::kBoolean:
      out = value(x.boolean());
      return {};
    case pb::Value::kInt64:
      out = value(static_cast<int64_t>(x.int64()));
      return {};
    case pb::Value::kUint64:
      out = value(static_cast<uint64_t>(x.uint64()));
      return {};
    case pb::Value::kFloat64:
      out = value(x.float64());
      return {};
    case pb::Value::kText:
      out = value(x.text());
      return {};
    case pb::Value::kBytes:
      out = value::from_bytes(x.bytes());
      return {};
    case pb::Value::kList: {
      value_list items;
      items.reserve(static_cast<size_t>(x.list().items_size()));
      for (const auto& item : x.list().items()) {
        value val;
        if (auto err = read_value(item, val, depth + 1, max); !err.empty())
          return err;
        items.push_back(std::move(val));
      }
      out = value(std::move(items));
      return {};
    }
    case pb::Value::kMap: {
      value_map items;
      if (auto err = read_map(x.map(), items, depth, max); !err.empty())
        return err;
      out = value::empty_map();
      out.as_map() = std::move(items);
      return {};
    }
    case pb::Value::kExt:
      if (x.ext().type() < -128 || x.ext().type() > 127)
        return "ext type code out of range";
      out
        = value(ext_value{static_cast<int8_t>(x.ext().type()), x.ext().data()});
      return {};
    default:
      return "value has no kind";
  }
}

std::string check_value(const pb::Value& x, int depth, int max);

std::string check_map(const pb::MapValue& x, int depth, int max) {
  // Small maps compare keys pairwise; larger ones use a set of views.
  std::unordered_set<std::string_view, keyed_hasher> texts;
  std::unordered_set<std::string_view, keyed_hasher> raws;
  const auto& entries = x.entries();
  bool small = entries.size() <= 16;
  for (int i = 0; i < entries.size(); ++i) {
    const auto& key = entries[i].key();
    if (key.kind_case() == pb::MapKey::KIND_NOT_SET)
      return "map key is neither text nor bytes";
    bool text = key.kind_case() == pb::MapKey::kText;
    std::string_view data = text ? key.text() : key.bytes();
    if (small) {
      for (int j = 0; j < i; ++j) {
        const auto& other = entries[j].key();
        if (other.kind_case() == key.kind_case()
            && (text ? other.text() : other.bytes()) == data)
          return "map has a duplicate key";
      }
    } else if (!(text ? texts : raws).insert(data).second) {
      return "map has a duplicate key";
    }
    if (auto err = check_value(entries[i].value(), depth + 1, max);
        !err.empty())
      return err;
  }
  return {};
}

std::string check_value(const pb::Value& x, int depth, int max) {
  if (depth > max)
    return "value nests deeper than " + std::to_string(max) + " levels";
  switch (x.kind_case()) {
    case pb::Value::kList:
      for (const auto& item : x.list().items())
        if (auto err = check_value(item, depth + 1, max); !err.empty())
          return err;
      return {};
    case pb::Value::kMap:
      return check_map(x.map(), depth, max);
    case pb::Value::kExt:
      if (x.ext().type() < -128 || x.ext().type() > 127)
        return "ext type code out of range";
      return {};
    case pb::Value::KIND_NOT_SET:
      return "value has no kind";
    default:
      return {};
  }
}

} // namespace

std::string validate(const pb::Value& x, int max_depth) {
  return check_value(x, 0, max_depth);
}

std::string validate(const pb::MapValue& x, int max_depth) {
  return check_map(x, 0, max_depth);
}

std::string from_proto(const pb::Value& x, value& out, int max_depth) {
  return read_value(x, out, 0, max_depth);
}

std::string from_proto(const pb::MapValue& x, value_map& out, int max_depth) {
  return read_map(x, out, 0, max_depth);
}

void encode_canonical(const value& x, std::string& out) {
  out += static_cast<char>(x.type());
  switch (x.type()) {
    case value::kind::nil:
      break;
    case value::kind::boolean:
      out += x.as_bool() ? '\1' : '\0';
      break;
    case value::kind::int64:
      put_u64(out, static_cast<uint64_t>(x.as_int64()));
      break;
    case value::kind::uint64:
      put_u64(out, x.as_uint64());
      break;
    case value::kind::float64: {
      double d = x.as_float64();
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof(bits));
      put_u64(out, bits);
      break;
    }
    case value::kind::text:
    case value::kind::bytes:
      put_blob(out, x.as_bytes());
      break;
    case value::kind::list:
      put_u64(out, x.as_list().size());
      for (const auto& item : x.as_list())
        encode_canonical(item, out);
      break;
    case value::kind::map:
      put_u64(out, x.as_map().size());
      for (const auto& item : x.as_map()) {
        out += item.key.is_text ? 't' : 'b';
        put_blob(out, item.key.data);
        encode_canonical(item.val, out);
      }
      break;
    case value::kind::ext:
      out += static_cast<char>(x.as_ext().type);
      put_blob(out, x.as_ext().data);
      break;
  }
}

namespace {

bool take_u64(std::string_view& in, uint64_t& x) {
  if (in.size() < 8)
    return false;
  x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
  in.remove_prefix(8);
  return true;
}

bool take_blob(std::string_view& in, std::string& out) {
  uint64_t size = 0;
  if (!take_u64(in, size) || in.size() < size)
    return false;
  out.assign(in.data(), static_cast<size_t>(size));
  in.remove_prefix(static_cast<size_t>(size));
  return true;
}

bool take_byte(std::string_view& in, char& c) {
  if (in.empty())
    return false;
  c = in.front();
  in.remove_prefix(1);
  return true;
}

bool decode_canonical_at(std::string_view& in, value& out, int depth);

} // namespace

bool decode_canonical(std::string_view& in, value& out) {
  return decode_canonical_at(in, out, 0);
}

namespace {

bool decode_canonical_at(std::string_view& in, value& out, int depth) {
  // Stored values were checked against the configured depth on their way
  // in; the ceiling bounds the recursion on hostile bytes.
  if (depth > max_value_depth_ceiling)
    return false;
  char kind = 0;
  if (!take_byte(in, kind))
    return false;
  uint64_t u = 0;
  switch (static_cast<value::kind>(kind)) {
    case value::kind::nil:
      out = value{};
      return true;
    case value::kind::boolean: {
      char b = 0;
      if (!take_byte(in, b))
        return false;
      out = value(b != 0);
      return true;
    }
    case value::kind::int64:
      if (!take_u64(in, u))
        return false;
      out = value(static_cast<int64_t>(u));
      return true;
    case value::kind::uint64:
      if (!take_u64(in, u))
        return false;
      out = value(u);
      return true;
    case value::kind::float64: {
      if (!take_u64(in, u))
        return false;
      double d;
      std::memcpy(&d, &u, sizeof(d));
      out = value(d);
      return true;
    }
    case value::kind::text:
    case value::kind::bytes: {
      std::string data;
      if (!take_blob(in, data))
        return false;
      out = static_cast<value::kind>(kind) == value::kind::text
              ? value(std::move(data))
              : value::from_bytes(std::move(data));
      return true;
    }
    case value::kind::list: {
      // Each element takes at least one byte: a bound against bogus counts.
      if (!take_u64(in, u) || u > in.size())
        return false;
      value_list items(static_cast<size_t>(u));
      for (auto& item : items)
        if (!decode_canonical_at(in, item, depth + 1))
          return false;
      out = value(std::move(items));
      return true;
    }
    case value::kind::map: {
      if (!take_u64(in, u) || u > in.size())
        return false;
      value_map items(static_cast<size_t>(u));
      for (auto& item : items) {
        char key_kind = 0;
        if (!take_byte(in, key_kind) || !take_blob(in, item.key.data)
            || !decode_canonical_at(in, item.val, depth + 1))
          return false;
        item.key.is_text = key_kind == 't';
      }
      // The encoding lists each key once: no per-item uniqueness check
      // (value(value_map) does one per item, quadratic in the map's size).
      out = value::empty_map();
      out.as_map() = std::move(items);
      return true;
    }
    case value::kind::ext: {
      ext_value ext;
      char type = 0;
      if (!take_byte(in, type) || !take_blob(in, ext.data))
        return false;
      ext.type = static_cast<int8_t>(type);
      out = value(std::move(ext));
      return true;
    }
  }
  return false;
}

} // namespace

} // namespace syncmesh
