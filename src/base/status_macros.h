// ESPY_RETURN_IF_ERROR / ESPY_ASSIGN_OR_RETURN: early returns for absl::Status
// and absl::StatusOr (Abseil 20220623 ships neither).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ESPY_STATUS_CONCAT_INNER(a, b) a##b
#define ESPY_STATUS_CONCAT(a, b) ESPY_STATUS_CONCAT_INNER(a, b)

#define ESPY_RETURN_IF_ERROR(expr)                                \
  do {                                                            \
    if (absl::Status _espy_status = (expr); !_espy_status.ok()) { \
      return _espy_status;                                        \
    }                                                             \
  } while (0)

#define ESPY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = *std::move(tmp)

// ESPY_ASSIGN_OR_RETURN(auto x, Foo()); declares x from Foo()'s value or
// returns its error.
#define ESPY_ASSIGN_OR_RETURN(lhs, expr) \
  ESPY_ASSIGN_OR_RETURN_IMPL(ESPY_STATUS_CONCAT(_espy_statusor_, __LINE__), lhs, expr)
