// clang-format off
// expect-error: conversion from .std::.*string.* to non-scalar type .syncmesh::node_id.
// A string could hold raw bytes or hex: node_id::from_raw / from_hex say.
#include <string>

#include <syncmesh/node_id.hpp>

void trap() {
  syncmesh::node_id id = std::string{"a1b2"};
  (void)id;
}
