#include "messages/frame_codec.hpp"

#include <google/protobuf/io/coded_stream.h>

#include "messages/value_proto.hpp"
#include "syncmesh/pb/wire.pb.h"

namespace syncmesh {

uint32_t read_frame_length(const char* header) noexcept {
  auto byte = [header](int i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(header[i]));
  };
  return (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
}

namespace {

void append_header(std::string& out, uint32_t len) {
  out += static_cast<char>((len >> 24) & 0xff);
  out += static_cast<char>((len >> 16) & 0xff);
  out += static_cast<char>((len >> 8) & 0xff);
  out += static_cast<char>(len & 0xff);
}

} // namespace

bool append_frame(std::string& out, std::string_view payload,
                  size_t max_frame_size) {
  if (payload.size() > max_frame_size || payload.size() > UINT32_MAX)
    return false;
  out.reserve(out.size() + frame_header_size + payload.size());
  append_header(out, static_cast<uint32_t>(payload.size()));
  out.append(payload.data(), payload.size());
  return true;
}

bool append_frame(std::string& out, const pb::Envelope& msg,
                  size_t max_frame_size) {
  auto len = msg.ByteSizeLong();
  if (len > max_frame_size || len > UINT32_MAX)
    return false;
  auto old_size = out.size();
  append_header(out, static_cast<uint32_t>(len));
  out.resize(old_size + frame_header_size + len);
  auto* first = reinterpret_cast<uint8_t*>(&out[old_size + frame_header_size]);
  msg.SerializeWithCachedSizesToArray(first);
  return true;
}

int wire_recursion_limit() noexcept {
  return proto_recursion_limit(max_value_depth_ceiling);
}

bool parse_untrusted(std::string_view bytes,
                     google::protobuf::MessageLite& out) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX))
    return false;
  google::protobuf::io::CodedInputStream in{
    reinterpret_cast<const uint8_t*>(bytes.data()),
    static_cast<int>(bytes.size())};
  // Protobuf's default (100) refuses a map nested 33 deep, which the value
  // limits allow: the peer would drop the link on every such write.
  in.SetRecursionLimit(wire_recursion_limit());
  return out.ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
}

std::string parse_envelope(std::string_view payload, pb::Envelope& out) {
  if (!parse_untrusted(payload, out))
    return "frame payload is not a valid envelope";
  return {};
}

void frame_decoder::feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 4096 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes.data(), bytes.size());
}

frame_status frame_decoder::next(std::string& payload) {
  if (buffered() < frame_header_size)
    return frame_status::need_more;
  auto len = read_frame_length(buf_.data() + pos_);
  if (len > max_frame_size_)
    return frame_status::too_large;
  if (buffered() < frame_header_size + len)
    return frame_status::need_more;
  payload.assign(buf_, pos_ + frame_header_size, len);
  pos_ += frame_header_size + len;
  return frame_status::ok;
}

} // namespace syncmesh
