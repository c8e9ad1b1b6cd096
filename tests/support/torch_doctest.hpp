// Include this instead of <doctest/doctest.h> in tests that use LibTorch: c10's logging defines a
// CHECK macro that would silently replace doctest's (dependencies.md §4.2), so torch comes first
// and its CHECK is removed before doctest defines its own.
#pragma once

#include <ATen/ATen.h>

#undef CHECK
#include <doctest/doctest.h>

// Note: CHECK(t.scalar_type() == at::kFloat) does not compile (doctest's unqualified toString()
// finds c10::toString, which returns const char*); compare at::toString(...) strings instead.
