#pragma once

// Glue between syncmesh's protobuf messages, its error codes and CAF 0.17.

#include <string>
#include <type_traits>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <google/protobuf/message.h>

#include "syncmesh/errors.hpp"
#include "syncmesh/pb/requests.pb.h"
#include "syncmesh/pb/wire.pb.h"

namespace caf::detail {
class stringification_inspector;
} // namespace caf::detail

namespace syncmesh {

/// The CAF error category of syncmesh's error codes.
inline constexpr caf::atom_value error_category = caf::atom("syncmesh");

/// Converts an error code into a CAF error.
inline caf::error make_error(errc x) {
  return caf::error{static_cast<uint8_t>(x), error_category};
}

/// Converts an error code plus context into a CAF error.
template <class T, class... Ts>
caf::error make_error(errc x, T&& y, Ts&&... ys) {
  return caf::error{
    static_cast<uint8_t>(x), error_category,
    caf::make_message(std::forward<T>(y), std::forward<Ts>(ys)...)};
}

/// The syncmesh error code of a CAF error (errc::none for other categories).
inline errc code_of(const caf::error& err) {
  return err.category() == error_category ? static_cast<errc>(err.code())
                                          : errc::none;
}

namespace pb {

/// Makes every protobuf message a CAF message type: it crosses actor
/// boundaries as its serialized bytes and prints as its text format.
template <class Inspector, class Message>
std::enable_if_t<std::is_base_of_v<google::protobuf::Message, Message>,
                 typename Inspector::result_type>
inspect(Inspector& f, Message& x) {
  auto name = caf::meta::type_name(Message::descriptor()->full_name().c_str());
  if constexpr (std::is_same_v<Inspector,
                               caf::detail::stringification_inspector>) {
    auto text = x.ShortDebugString();
    return f(name, text);
  } else if constexpr (Inspector::reads_state) {
    std::string bytes;
    x.SerializeToString(&bytes);
    return f(name, bytes);
  } else {
    std::string bytes;
    auto load = caf::meta::load_callback([&]() -> caf::error {
      if (!x.ParseFromString(bytes))
        return caf::sec::invalid_argument;
      return caf::none;
    });
    return f(name, bytes, load);
  }
}

} // namespace pb

} // namespace syncmesh
