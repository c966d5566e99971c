// clang-format off
// expect-error: conversion from .std::map<int, int>. to non-scalar type .syncmesh::value.
// Map values have text or bytes keys (msgpack maps of py2p and js2p).
#include <map>

#include <syncmesh/value.hpp>

void trap() {
  syncmesh::value v = std::map<int, int>{{1, 2}};
  (void)v;
}
