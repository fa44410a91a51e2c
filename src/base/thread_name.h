// Names the calling thread, so that `top -H`, `ps -L`, perf and gdb show
// which of Espy's threads is which (espy-http, espy-commit, ...). Linux
// keeps 15 bytes of a name; longer names are cut.
#pragma once

#include <string_view>

namespace espy::base {

void SetThreadName(std::string_view name);

}  // namespace espy::base
