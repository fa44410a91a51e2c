#include "base/threads.h"

#include <pthread.h>

#include <algorithm>
#include <string>
#include <thread>

namespace espy::base {

void SetThreadName(std::string_view name) {
  // The kernel's limit is 16 bytes with the terminating NUL.
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

int ThreadsOrOnePerCore(int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace espy::base
