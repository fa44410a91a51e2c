#include "base/thread_name.h"

#include <pthread.h>

#include <string>

namespace espy::base {

void SetThreadName(std::string_view name) {
  // The kernel's limit is 16 bytes with the terminating NUL.
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace espy::base
