#include "base/thread_name.h"

#include <pthread.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace espy::base {
namespace {

std::string NameOfThisThread() {
  char buf[32] = {};
  pthread_getname_np(pthread_self(), buf, sizeof(buf));
  return buf;
}

TEST(SetThreadNameTest, NamesTheCallingThreadAndCutsLongNames) {
  std::string short_name, long_name;
  std::thread([&] {
    SetThreadName("espy-commit");
    short_name = NameOfThisThread();
    SetThreadName("espy-a-name-longer-than-fifteen");
    long_name = NameOfThisThread();
  }).join();
  EXPECT_EQ("espy-commit", short_name);
  EXPECT_EQ("espy-a-name-lon", long_name);
}

}  // namespace
}  // namespace espy::base
