#include "core/digest.h"

#include <gtest/gtest.h>

#include <string>

namespace horizon {
namespace {

TEST(Hex, EncodesEveryByte) {
  EXPECT_EQ(hex(""), "");
  EXPECT_EQ(hex(std::string("\x00\x01\x7f\x80\xab\xff", 6)), "00017f80abff");
}

}  // namespace
}  // namespace horizon
