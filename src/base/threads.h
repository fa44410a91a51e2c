// Thread helpers: naming the calling thread, so that `top -H`, `ps -L`, perf
// and gdb show which of Espy's threads is which (espy-http, espy-commit,
// ...), and the "0 means one per core" rule of every thread-count setting.
#pragma once

#include <string_view>

namespace espy::base {

// Linux keeps 15 bytes of a name; longer names are cut.
void SetThreadName(std::string_view name);

// `requested` if it is positive, else one per core (at least 1).
int ThreadsOrOnePerCore(int requested);

}  // namespace espy::base
