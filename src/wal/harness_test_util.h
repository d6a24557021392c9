#pragma once
// For the harness-validity tests (RELIABILITY H, wal/mutant.h): runs a
// test's checks with gtest's failures intercepted, so that a test can
// require that a check FAILS under a mutant without failing itself.
//
// Thread-safety: intercepts failures of the calling thread only.

#include "wal/mutant.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

namespace horizon::testing {

// The first failure `body` reported, on one line ("" if none).
inline std::string first_failure_of(const std::function<void()>& body) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    body();
  }
  for (int i = 0; i < results.size(); ++i) {
    const auto& r = results.GetTestPartResult(i);
    if (!r.failed()) continue;
    std::string s = r.summary() != nullptr && *r.summary() != '\0' ? r.summary() : "(no message)";
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s.substr(0, 300);
  }
  return {};
}

// Runs `checks` with mutant `id` on: at least one of them must fail (the
// first failure is printed), and all must pass with it off.
inline void expect_mutant_caught(mutant::Id id, const std::function<void()>& checks) {
  std::string why;
  {
    mutant::Scoped on(id);
    why = first_failure_of(checks);
  }
  std::printf("H: mutant %s %s\n", std::string(mutant::name(id)).c_str(),
              why.empty() ? "NOT caught" : ("caught: " + why).c_str());
  EXPECT_FALSE(why.empty()) << "mutant " << mutant::name(id) << " was not caught";
  EXPECT_EQ(first_failure_of(checks), "") << "the checks fail without mutant " << mutant::name(id);
}

}  // namespace horizon::testing
