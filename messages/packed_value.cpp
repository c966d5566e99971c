#include "messages/packed_value.hpp"

#include <cstring>

#include "messages/value_proto.hpp"

namespace syncmesh {

namespace {

constexpr size_t header = sizeof(uint32_t);

} // namespace

packed_value packed_value::encode(const value& x) {
  std::string bytes;
  encode_canonical(x, bytes);
  packed_value result;
  auto size = static_cast<uint32_t>(bytes.size());
  result.block_.reset(new char[header + size]);
  std::memcpy(result.block_.get(), &size, header);
  std::memcpy(result.block_.get() + header, bytes.data(), size);
  return result;
}

std::string_view packed_value::canonical() const noexcept {
  if (!block_)
    return {};
  uint32_t size;
  std::memcpy(&size, block_.get(), header);
  return {block_.get() + header, size};
}

value packed_value::decode() const {
  value result;
  auto bytes = canonical();
  // The bytes came from encode_canonical, so decoding cannot fail.
  if (!bytes.empty())
    decode_canonical(bytes, result);
  return result;
}

} // namespace syncmesh
