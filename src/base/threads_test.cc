#include "base/threads.h"

#include <pthread.h>

#include <algorithm>
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

TEST(ThreadsOrOnePerCoreTest, ZeroOrLessMeansOnePerCore) {
  EXPECT_EQ(3, ThreadsOrOnePerCore(3));
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(cores, ThreadsOrOnePerCore(0));
  EXPECT_EQ(cores, ThreadsOrOnePerCore(-1));
}

}  // namespace
}  // namespace espy::base
