#include "messages/py2p_codec.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <msgpack.hpp>
#include <openssl/evp.h>
#include <zlib.h>

#include "messages/value_proto.hpp"

namespace syncmesh::py2p {

// -- hashes and ids
// --------------------------------------------------------------

namespace {

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest is one call with no state to leak on error.
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1)
    return {};
  return std::string(reinterpret_cast<const char*>(out), len);
}

constexpr const char* b58_alphabet
  = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

} // namespace

std::string sha256(std::string_view data) {
  return digest(EVP_sha256(), data);
}

std::string sha384(std::string_view data) {
  return digest(EVP_sha384(), data);
}

std::string base58_int(std::string_view digest) {
  // Long division of the big-endian number by 58, on a copy of its bytes.
  std::vector<unsigned char> num(digest.begin(), digest.end());
  std::string out;
  size_t start = 0;
  while (start < num.size() && num[start] == 0)
    ++start;
  while (start < num.size()) {
    unsigned rem = 0;
    for (size_t i = start; i < num.size(); ++i) {
      unsigned cur = rem * 256 + num[i];
      num[i] = static_cast<unsigned char>(cur / 58);
      rem = cur % 58;
    }
    out.push_back(b58_alphabet[rem]);
    while (start < num.size() && num[start] == 0)
      ++start;
  }
  if (out.empty())
    return "1";
  return std::string(out.rbegin(), out.rend());
}

std::string protocol_id(const std::string& subnet, bool leasing,
                        const std::string& encryption,
                        const std::string& version) {
  // SyncSocket appends the leasing digit to the subnet; the node policy
  // version ("870") is not part of the hash.
  return base58_int(
    sha256(subnet + (leasing ? "1" : "0") + encryption + version));
}

std::string node_id_from_seed(std::string_view seed) {
  return base58_int(sha384(seed));
}

std::string random_node_id(const std::string& protocol_id) {
  std::random_device rd;
  std::string salt;
  for (int i = 0; i < 4; ++i)
    salt += std::to_string(rd());
  return node_id_from_seed(salt + protocol_id);
}

bool is_base58_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id)
    if (std::strchr(b58_alphabet, c) == nullptr || c == '\0')
      return false;
  return true;
}

// -- msgpack <-> value
// ----------------------------------------------------------

} // namespace syncmesh::py2p

// msgpack-c packs into any type with write(const char*, size_t).
namespace syncmesh::py2p::detail {

struct string_sink {
  std::string* out;
  void write(const char* data, size_t n) { out->append(data, n); }
};

void pack(msgpack::packer<string_sink>& pk, string_sink& sink,
          const pb::Value& x) {
  switch (x.kind_case()) {
    case pb::Value::kBoolean:
      if (x.boolean())
        pk.pack_true();
      else
        pk.pack_false();
      break;
    case pb::Value::kInt64:
      pk.pack_int64(x.int64());
      break;
    case pb::Value::kUint64:
      pk.pack_uint64(x.uint64());
      break;
    case pb::Value::kFloat64: {
      // Always float64 (0xcb): msgpack-c's pack_double would turn 2.0 into
      // the integer 2, which is not the value we were given.
      uint64_t bits = 0;
      auto d = x.float64();
      std::memcpy(&bits, &d, sizeof(bits));
      char buf[9];
      buf[0] = static_cast<char>(0xcb);
      for (int i = 0; i < 8; ++i)
        buf[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
      sink.write(buf, sizeof(buf));
      break;
    }
    case pb::Value::kText:
      pk.pack_str(static_cast<uint32_t>(x.text().size()));
      pk.pack_str_body(x.text().data(), static_cast<uint32_t>(x.text().size()));
      break;
    case pb::Value::kBytes:
      pk.pack_bin(static_cast<uint32_t>(x.bytes().size()));
      pk.pack_bin_body(x.bytes().data(),
                       static_cast<uint32_t>(x.bytes().size()));
      break;
    case pb::Value::kList:
      pk.pack_array(static_cast<uint32_t>(x.list().items_size()));
      for (const auto& item : x.list().items())
        pack(pk, sink, item);
      break;
    case pb::Value::kMap:
      pk.pack_map(static_cast<uint32_t>(x.map().entries_size()));
      for (const auto& entry : x.map().entries()) {
        const auto& k = entry.key();
        if (k.kind_case() == pb::MapKey::kBytes) {
          pk.pack_bin(static_cast<uint32_t>(k.bytes().size()));
          pk.pack_bin_body(k.bytes().data(),
                           static_cast<uint32_t>(k.bytes().size()));
        } else {
          pk.pack_str(static_cast<uint32_t>(k.text().size()));
          pk.pack_str_body(k.text().data(),
                           static_cast<uint32_t>(k.text().size()));
        }
        pack(pk, sink, entry.value());
      }
      break;
    case pb::Value::kExt:
      pk.pack_ext(x.ext().data().size(), static_cast<int8_t>(x.ext().type()));
      pk.pack_ext_body(x.ext().data().data(),
                       static_cast<uint32_t>(x.ext().data().size()));
      break;
    default: // nil, and unset kinds (refused by validation before this)
      pk.pack_nil();
  }
}

/// Builds a pb::Value from msgpack-c's parse events. The library does not
/// allocate per header with a visitor; we add one element at a time, so
/// memory follows the bytes that actually arrived, capped by max_elements.
class value_builder : public msgpack::null_visitor {
public:
  value_builder(pb::Value& root, size_t max_depth, size_t max_elements)
      : root_(root), max_depth_(max_depth), max_elements_(max_elements) {}

  bool visit_nil() {
    return put([](pb::Value& v) { v.mutable_nil(); });
  }
  bool visit_boolean(bool b) {
    return put([b](pb::Value& v) { v.set_boolean(b); });
  }
  bool visit_positive_integer(uint64_t x) {
    // msgpack has one integer type: what fits int64 reads as int64.
    return put([x](pb::Value& v) {
      if (x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        v.set_int64(static_cast<int64_t>(x));
      else
        v.set_uint64(x);
    });
  }
  bool visit_negative_integer(int64_t x) {
    return put([x](pb::Value& v) { v.set_int64(x); });
  }
  bool visit_float32(float x) {
    return put([x](pb::Value& v) { v.set_float64(x); });
  }
  bool visit_float64(double x) {
    return put([x](pb::Value& v) { v.set_float64(x); });
  }
  bool visit_str(const char* p, uint32_t n) {
    if (in_key_)
      return put_key(p, n, true);
    return put([p, n](pb::Value& v) { v.set_text(p, n); });
  }
  bool visit_bin(const char* p, uint32_t n) {
    if (in_key_)
      return put_key(p, n, false);
    return put([p, n](pb::Value& v) { v.set_bytes(p, n); });
  }
  bool visit_ext(const char* p, uint32_t n) {
    // msgpack-c hands the type byte first, then the data.
    if (n < 1)
      return fail("ext without a type");
    return put([p, n](pb::Value& v) {
      auto* ext = v.mutable_ext();
      ext->set_type(static_cast<int8_t>(p[0]));
      ext->set_data(p + 1, n - 1);
    });
  }
  bool start_array(uint32_t) {
    if (stack_.size() >= max_depth_)
      return fail("nesting deeper than " + std::to_string(max_depth_));
    pb::Value* v = slot();
    if (v == nullptr)
      return false;
    v->mutable_list();
    stack_.push_back(v);
    return true;
  }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool start_map(uint32_t) {
    if (stack_.size() >= max_depth_)
      return fail("nesting deeper than " + std::to_string(max_depth_));
    pb::Value* v = slot();
    if (v == nullptr)
      return false;
    v->mutable_map();
    stack_.push_back(v);
    return true;
  }
  bool start_map_key() {
    in_key_ = true;
    return true;
  }
  bool end_map_key() {
    in_key_ = false;
    return true;
  }
  bool end_map() {
    stack_.pop_back();
    return true;
  }
  void parse_error(size_t, size_t) { fail("malformed msgpack"); }
  void insufficient_bytes(size_t, size_t) { fail("truncated msgpack"); }

  const std::string& error() const { return error_; }
  bool done() const { return root_used_ && stack_.empty(); }

private:
  bool fail(std::string why) {
    if (error_.empty())
      error_ = std::move(why);
    return false;
  }

  /// Where the next value goes: the root, the next list item or the value
  /// of the map entry whose key was just read.
  pb::Value* slot() {
    if (++elements_ > max_elements_) {
      fail("more than " + std::to_string(max_elements_) + " elements");
      return nullptr;
    }
    if (stack_.empty()) {
      if (root_used_) {
        fail("more than one msgpack object");
        return nullptr;
      }
      root_used_ = true;
      return &root_;
    }
    auto* top = stack_.back();
    if (top->has_list())
      return top->mutable_list()->add_items();
    auto* entries = top->mutable_map()->mutable_entries();
    if (entries->empty() || entries->rbegin()->has_value()) {
      fail("map value without a key");
      return nullptr;
    }
    return entries->rbegin()->mutable_value();
  }

  template <class F>
  bool put(F f) {
    if (in_key_)
      return fail("map key that is neither str nor bin");
    auto* v = slot();
    if (v == nullptr)
      return false;
    f(*v);
    return true;
  }

  bool put_key(const char* p, uint32_t n, bool is_text) {
    if (++elements_ > max_elements_)
      return fail("more than " + std::to_string(max_elements_) + " elements");
    auto* entry = stack_.back()->mutable_map()->add_entries();
    if (is_text)
      entry->mutable_key()->set_text(p, n);
    else
      entry->mutable_key()->set_bytes(p, n);
    return true;
  }

  pb::Value& root_;
  size_t max_depth_;
  size_t max_elements_;
  size_t elements_ = 0;
  bool root_used_ = false;
  bool in_key_ = false;
  std::vector<pb::Value*> stack_;
  std::string error_;
};

} // namespace syncmesh::py2p::detail

namespace syncmesh::py2p {

void encode(const pb::Value& x, std::string& out) {
  detail::string_sink sink{&out};
  msgpack::packer<detail::string_sink> pk(sink);
  detail::pack(pk, sink, x);
}

std::string decode(std::string_view data, pb::Value& out,
                   const decode_limits& limits) {
  out.Clear();
  if (data.empty())
    return "empty msgpack";
  // Every element takes at least one byte, so this bound never refuses
  // honest input, and it caps the objects a hostile frame can make.
  detail::value_builder builder(out, limits.max_depth, data.size());
  size_t off = 0;
  bool ok = false;
  try {
    ok = msgpack::parse(data.data(), data.size(), off, builder);
  } catch (const std::exception& e) {
    return std::string{"malformed msgpack: "} + e.what();
  }
  if (!builder.error().empty())
    return builder.error();
  if (!ok || !builder.done())
    return "malformed msgpack";
  if (off != data.size())
    return "trailing bytes after the msgpack object";
  // Duplicate map keys and ext codes out of range, as for native values
  // (the depth was bounded while building).
  if (auto err = validate(out, static_cast<int>(limits.max_depth));
      !err.empty())
    return err;
  return {};
}

// -- compression
// ----------------------------------------------------------------

namespace {

int window_bits(uint8_t m) {
  // 15: RFC 1950 (zlib); 15 + 16: RFC 1952 (gzip). Strict per flag, as js2p.
  return m == method::zlib ? 15 : 31;
}

} // namespace

std::optional<std::string> compress(uint8_t m, std::string_view data) {
  if (m != method::zlib && m != method::gzip)
    return std::nullopt;
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits(m), 8,
                   Z_DEFAULT_STRATEGY)
      != Z_OK)
    return std::nullopt;
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in
    = reinterpret_cast<Bytef*>(const_cast<char*>(data.data())); // NOLINT
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  auto rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END)
    return std::nullopt;
  return out;
}

std::optional<std::string> decompress(uint8_t m, std::string_view data,
                                      size_t max_out, bool* over_limit) {
  if (over_limit)
    *over_limit = false;
  if (m != method::zlib && m != method::gzip)
    return std::nullopt;
  z_stream zs{};
  if (inflateInit2(&zs, window_bits(m)) != Z_OK)
    return std::nullopt;
  zs.next_in
    = reinterpret_cast<Bytef*>(const_cast<char*>(data.data())); // NOLINT
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char chunk[16 * 1024];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END)
      break;
    auto produced = sizeof(chunk) - zs.avail_out;
    // Stop a zip bomb as soon as it passes the bound, before keeping more.
    if (out.size() + produced > max_out) {
      if (over_limit)
        *over_limit = true;
      rc = Z_DATA_ERROR;
      break;
    }
    out.append(chunk, produced);
    if (rc == Z_OK && produced == 0 && zs.avail_in == 0) {
      rc = Z_BUF_ERROR; // truncated stream
      break;
    }
  }
  bool complete = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  if (!complete)
    return std::nullopt;
  return out;
}

// -- frames -------------------------------------------------------------------

raw_message make_raw(std::string msgpack) {
  raw_message result;
  result.id = sha256(msgpack);
  result.msgpack = std::move(msgpack);
  return result;
}

std::string frame(const raw_message& msg, const std::vector<uint8_t>& peer,
                  size_t max_frame_size) {
  std::string body;
  body.reserve(msg.id.size() + msg.msgpack.size());
  body += msg.id;
  body += msg.msgpack;
  // Our preference order decides, among what the peer can decode.
  for (auto m : supported_methods()) {
    bool listed = false;
    for (auto p : peer)
      listed |= p == m;
    if (!listed)
      continue;
    if (auto packed = compress(m, body))
      body = std::move(*packed);
    break;
  }
  if (body.size() > max_frame_size
      || body.size() > std::numeric_limits<uint32_t>::max())
    return {};
  std::string out;
  out.reserve(4 + body.size());
  auto n = static_cast<uint32_t>(body.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out += body;
  return out;
}

namespace {

bool split_checked(std::string_view plain, raw_message& out) {
  if (plain.size() < id_size)
    return false;
  auto body = plain.substr(id_size);
  auto id = sha256(body);
  if (id.size() != id_size || plain.compare(0, id_size, id) != 0)
    return false;
  out.id = std::move(id);
  out.msgpack.assign(body.data(), body.size());
  return true;
}

} // namespace

std::string open_frame(std::string_view body,
                       const std::vector<uint8_t>& sender_methods,
                       size_t max_frame_size, raw_message& out,
                       bool* too_large) {
  if (too_large)
    *too_large = false;
  bool over = false;
  for (auto m : sender_methods) {
    if (m != method::zlib && m != method::gzip)
      continue;
    // Decompressed frames are bounded by the same size as raw ones.
    bool over_here = false;
    if (auto plain = decompress(m, body, max_frame_size, &over_here))
      if (split_checked(*plain, out))
        return {};
    over |= over_here;
  }
  // Uncompressed frames are always accepted, whatever was negotiated.
  if (split_checked(body, out))
    return {};
  // Without this the peer would read "checksum mismatch" for a value that
  // is merely larger than this node accepts.
  if (over) {
    if (too_large)
      *too_large = true;
    return "frame decompresses to more than " + std::to_string(max_frame_size)
           + " bytes (the largest frame this node accepts)";
  }
  if (body.size() < id_size)
    return "frame shorter than its " + std::to_string(id_size)
           + "-byte checksum";
  return "checksum mismatch (or undecodable compression)";
}

// -- messages
// -------------------------------------------------------------------

int message::sub_flag() const {
  if (payload.empty())
    return -1;
  const auto& x = payload.front();
  if (x.kind_case() == pb::Value::kInt64 && x.int64() >= 0 && x.int64() < 256)
    return static_cast<int>(x.int64());
  return -1;
}

std::optional<std::string> as_bytes(const pb::Value& x) {
  if (x.kind_case() == pb::Value::kText)
    return x.text();
  if (x.kind_case() == pb::Value::kBytes)
    return x.bytes();
  return std::nullopt;
}

std::optional<uint64_t> as_seconds(const pb::Value& x) {
  if (x.kind_case() == pb::Value::kInt64)
    return x.int64() < 0
             ? std::nullopt
             : std::optional<uint64_t>(static_cast<uint64_t>(x.int64()));
  if (x.kind_case() == pb::Value::kUint64)
    return x.uint64();
  // msgpack-lite sends numbers beyond int32 as float64 (js2p after 2038).
  if (x.kind_case() == pb::Value::kFloat64 && std::isfinite(x.float64())
      && x.float64() >= 0 && x.float64() < 1.8e19)
    return static_cast<uint64_t>(std::floor(x.float64()));
  return std::nullopt;
}

namespace {

std::optional<int64_t> as_int(const pb::Value& x) {
  if (x.kind_case() == pb::Value::kInt64)
    return x.int64();
  return std::nullopt;
}

} // namespace

std::string parse(std::string_view msgpack, message& out,
                  const decode_limits& limits) {
  pb::Value root;
  if (auto err = decode(msgpack, root, limits); !err.empty())
    return err;
  if (!root.has_list())
    return "message is not a msgpack array";
  auto* items = root.mutable_list()->mutable_items();
  if (items->size() < 3)
    return "message with fewer than 3 packets";
  auto type = as_int((*items)[0]);
  if (!type || *type < 0 || *type > 255)
    return "message type is not a small integer";
  auto sender = as_bytes((*items)[1]);
  if (!sender || sender->empty() || sender->size() > 128)
    return "message sender is not an id";
  auto time = as_seconds((*items)[2]);
  if (!time)
    return "message time is not a number of seconds";
  out.type = static_cast<uint8_t>(*type);
  out.sender_bin = (*items)[1].kind_case() == pb::Value::kBytes;
  out.sender = std::move(*sender);
  out.time = *time;
  out.payload.clear();
  out.payload.reserve(static_cast<size_t>(items->size() - 3));
  for (int i = 3; i < items->size(); ++i)
    out.payload.push_back(std::move((*items)[i]));
  return {};
}

std::string build(uint8_t type, const std::string& sender, uint64_t time,
                  const std::vector<pb::Value>& payload) {
  std::string out;
  detail::string_sink sink{&out};
  msgpack::packer<detail::string_sink> pk(sink);
  pk.pack_array(static_cast<uint32_t>(3 + payload.size()));
  pk.pack_uint8(type);
  pk.pack_str(static_cast<uint32_t>(sender.size()));
  pk.pack_str_body(sender.data(), static_cast<uint32_t>(sender.size()));
  pk.pack_uint64(time);
  for (const auto& x : payload)
    detail::pack(pk, sink, x);
  return out;
}

pb::Value text(std::string x) {
  pb::Value v;
  v.set_text(std::move(x));
  return v;
}

pb::Value bin(std::string x) {
  pb::Value v;
  v.set_bytes(std::move(x));
  return v;
}

pb::Value id_value(std::string id, bool as_bin) {
  return as_bin ? bin(std::move(id)) : text(std::move(id));
}

pb::Value uint(uint64_t x) {
  pb::Value v;
  if (x <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    v.set_int64(static_cast<int64_t>(x));
  else
    v.set_uint64(x);
  return v;
}

std::vector<pb::Value> handshake_payload(const std::string& id,
                                         const std::string& protocol_id,
                                         const std::string& host, uint16_t port,
                                         const std::vector<uint8_t>& methods) {
  std::vector<pb::Value> p;
  p.push_back(uint(flag::handshake));
  p.push_back(text(id));
  p.push_back(text(protocol_id));
  pb::Value addr;
  *addr.mutable_list()->add_items() = text(host);
  *addr.mutable_list()->add_items() = uint(port);
  p.push_back(std::move(addr));
  pb::Value ms;
  ms.mutable_list();
  for (auto m : methods)
    *ms.mutable_list()->add_items() = uint(m);
  p.push_back(std::move(ms));
  return p;
}

namespace {

bool read_address(const pb::Value& x, std::string& host, uint16_t& port) {
  if (!x.has_list() || x.list().items_size() != 2)
    return false;
  auto h = as_bytes(x.list().items(0));
  auto p = as_int(x.list().items(1));
  if (!h || h->empty() || h->size() > 255 || !p || *p < 0 || *p > 65535)
    return false;
  host = std::move(*h);
  port = static_cast<uint16_t>(*p);
  return true;
}

} // namespace

std::string read_handshake(const std::vector<pb::Value>& payload,
                           handshake_info& out) {
  if (payload.size() != 5)
    return "handshake without exactly 5 elements";
  auto id = as_bytes(payload[1]);
  if (!id || id->empty() || id->size() > 128)
    return "handshake without a node id";
  auto proto = as_bytes(payload[2]);
  if (!proto)
    return "handshake without a protocol id";
  if (!read_address(payload[3], out.host, out.port))
    return "handshake without a [host, port] address";
  if (!payload[4].has_list())
    return "handshake without a compression list";
  out.methods.clear();
  for (const auto& m : payload[4].list().items()) {
    auto x = as_int(m);
    if (x && *x >= 0 && *x < 256 && out.methods.size() < 16)
      out.methods.push_back(static_cast<uint8_t>(*x));
  }
  out.id = std::move(*id);
  out.protocol_id = std::move(*proto);
  return {};
}

std::vector<pb::Value> peers_payload(const std::vector<peer_address>& peers) {
  std::vector<pb::Value> p;
  p.push_back(uint(flag::peers));
  pb::Value list;
  list.mutable_list();
  for (const auto& x : peers) {
    auto* entry = list.mutable_list()->add_items()->mutable_list();
    auto* addr = entry->add_items()->mutable_list();
    *addr->add_items() = text(x.host);
    *addr->add_items() = uint(x.port);
    *entry->add_items() = id_value(x.id, x.id_bin);
  }
  p.push_back(std::move(list));
  return p;
}

std::string read_peers(const std::vector<pb::Value>& payload,
                       std::vector<peer_address>& out, size_t max) {
  if (payload.size() != 2 || !payload[1].has_list())
    return "peers message without a list";
  for (const auto& entry : payload[1].list().items()) {
    if (out.size() >= max)
      break;
    if (!entry.has_list() || entry.list().items_size() != 2)
      continue;
    peer_address p;
    auto id = as_bytes(entry.list().items(1));
    if (!id || id->empty() || id->size() > 128
        || !read_address(entry.list().items(0), p.host, p.port) || p.port == 0)
      continue;
    p.id = std::move(*id);
    p.id_bin = entry.list().items(1).kind_case() == pb::Value::kBytes;
    out.push_back(std::move(p));
  }
  return {};
}

std::vector<pb::Value> user_payload(uint8_t sub_flag,
                                    const std::vector<pb::Value>& packets) {
  std::vector<pb::Value> p;
  p.reserve(packets.size() + 1);
  p.push_back(uint(sub_flag));
  p.insert(p.end(), packets.begin(), packets.end());
  return p;
}

std::vector<pb::Value> lookup_payload(const std::string& request_id,
                                      const std::string& target,
                                      bool target_bin) {
  std::vector<pb::Value> p;
  p.push_back(uint(flag::request));
  p.push_back(text(request_id));
  p.push_back(target_bin ? bin(target) : text(target));
  return p;
}

std::vector<pb::Value> lookup_answer_payload(const pb::Value& request_id,
                                             const std::string& host,
                                             uint16_t port,
                                             const pb::Value& target) {
  std::vector<pb::Value> p;
  p.push_back(uint(flag::response));
  p.push_back(request_id);
  pb::Value answer;
  auto* entry = answer.mutable_list();
  auto* addr = entry->add_items()->mutable_list();
  *addr->add_items() = text(host);
  *addr->add_items() = uint(port);
  *entry->add_items() = target;
  p.push_back(std::move(answer));
  return p;
}

std::string read_lookup_answer(const std::vector<pb::Value>& payload,
                               lookup_answer& out) {
  if (payload.size() != 3 || as_int(payload[0]) != flag::response)
    return "not a lookup answer";
  auto request_id = as_bytes(payload[1]);
  if (!request_id || request_id->empty() || request_id->size() > 256)
    return "lookup answer without a request id";
  const auto& answer = payload[2];
  if (!answer.has_list() || answer.list().items_size() != 2)
    return "lookup answer without [[host, port], id]";
  auto id = as_bytes(answer.list().items(1));
  if (!id || id->empty() || id->size() > 128)
    return "lookup answer without a node id";
  if (!read_address(answer.list().items(0), out.peer.host, out.peer.port)
      || out.peer.port == 0)
    return "lookup answer without a valid address";
  out.request_id = std::move(*request_id);
  out.peer.id = std::move(*id);
  return {};
}

std::string read_store(const std::vector<pb::Value>& payload, store_info& out) {
  auto sub = payload.empty()                               ? -1
             : payload[0].kind_case() == pb::Value::kInt64 ? payload[0].int64()
                                                           : -1;
  if (sub != flag::store && sub != flag::delta)
    return "not a store or delta";
  out.delta = sub == flag::delta;
  if (payload.size() != 3 && (out.delta || payload.size() != 5))
    return out.delta ? "delta without exactly 3 elements"
                     : "store without 3 or 5 elements";
  auto key = as_bytes(payload[1]);
  if (!key || key->empty())
    return "store without a str or bin key";
  out.key = std::move(*key);
  out.value = payload[2];
  if (out.delta && !out.value.has_map())
    return "delta whose value is not a map";
  out.initial_sync = payload.size() == 5;
  if (out.initial_sync) {
    auto owner = as_bytes(payload[3]);
    auto ts = as_seconds(payload[4]);
    if (!owner || owner->empty() || owner->size() > 128 || !ts)
      return "initial-sync store without an owner and a timestamp";
    out.owner = std::move(*owner);
    out.owner_bin = payload[3].kind_case() == pb::Value::kBytes;
    out.timestamp = *ts;
  }
  return {};
}

std::vector<pb::Value> store_payload(const std::string& key,
                                     const pb::Value& value) {
  return {uint(flag::store), bin(key), value};
}

std::vector<pb::Value> store5_payload(const std::string& key,
                                      const pb::Value& value,
                                      const pb::Value& owner, uint64_t ts) {
  return {uint(flag::store), bin(key), value, owner, uint(ts)};
}

std::vector<pb::Value> delta_payload(const std::string& key,
                                     const pb::Value& fields) {
  return {uint(flag::delta), bin(key), fields};
}

} // namespace syncmesh::py2p
