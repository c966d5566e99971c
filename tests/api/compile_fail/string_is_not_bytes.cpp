// clang-format off
// expect-error: conversion from .std::.*string.* to non-scalar type .syncmesh::bytes.
// A std::string is text: bytes from it are asked for by name.
#include <string>

#include <syncmesh/value.hpp>

void trap() {
  std::string text = "text";
  syncmesh::bytes raw = text;
  (void)raw;
}
