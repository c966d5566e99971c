// clang-format off
// expect-error: conversion from .syncmesh::bytes. to non-scalar type .std::.*string
// Bytes do not pass as text either: .str() or .view() asks for them.
#include <string>

#include <syncmesh/value.hpp>

void trap() {
  std::string text = syncmesh::bytes{0x01};
  (void)text;
}
