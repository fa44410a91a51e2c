// ESPY_CHECK: programmer errors abort with a message. Never for user input.
//   ESPY_CHECK(n > 0) << "why it must hold";
// ESPY_DCHECK compiles to nothing in release builds (NDEBUG).
#pragma once

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace espy::base::internal {

// Collects the streamed message and aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* cond) {
    stream_ << file << ":" << line << ": check failed: " << cond << " ";
  }
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure() {
    std::cerr << stream_.str() << std::endl;
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `cond ? (void)0 : Voidify() & stream` type-check.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace espy::base::internal

#define ESPY_CHECK(cond)                       \
  (cond) ? (void)0                             \
         : ::espy::base::internal::Voidify() & \
               ::espy::base::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#ifdef NDEBUG
#define ESPY_DCHECK(cond) \
  while (false) ESPY_CHECK(cond)
#else
#define ESPY_DCHECK(cond) ESPY_CHECK(cond)
#endif
