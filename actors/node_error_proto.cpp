#include "actors/node_error_proto.hpp"

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/message.hpp>
#include <caf/message_builder.hpp>

#include "syncmesh/caf_types.hpp"
#include "syncmesh/errors.hpp"

namespace syncmesh {

void to_proto(const caf::error& err, pb::NodeError& out) {
  out.Clear();
  if (err.category() != error_category) {
    out.set_code(static_cast<uint32_t>(errc::malformed));
    out.add_context()->set_text(caf::to_string(err));
    return;
  }
  out.set_code(err.code());
  const auto& ctx = err.context();
  for (size_t i = 0; i < ctx.size(); ++i) {
    auto* detail = out.add_context();
    if (ctx.match_element<std::string>(i))
      detail->set_text(ctx.get_as<std::string>(i));
    else if (ctx.match_element<uint64_t>(i))
      detail->set_u64(ctx.get_as<uint64_t>(i));
    else if (ctx.match_element<uint32_t>(i))
      detail->set_u32(ctx.get_as<uint32_t>(i));
    else
      detail->set_text(ctx.stringify(i));
  }
}

caf::error from_proto(const pb::NodeError& x) {
  caf::message_builder context;
  for (const auto& detail : x.context()) {
    switch (detail.kind_case()) {
      case pb::ErrorDetail::kU64:
        context.append(static_cast<uint64_t>(detail.u64()));
        break;
      case pb::ErrorDetail::kU32:
        context.append(static_cast<uint32_t>(detail.u32()));
        break;
      case pb::ErrorDetail::kText:
      case pb::ErrorDetail::KIND_NOT_SET:
        context.append(detail.text());
        break;
    }
  }
  // Codes are one byte (errc); a wider one is not ours.
  auto code = x.code() <= UINT8_MAX ? static_cast<uint8_t>(x.code())
                                    : static_cast<uint8_t>(errc::malformed);
  return caf::error{code, error_category, context.to_message()};
}

} // namespace syncmesh
