#include "simcap/iccid.hpp"

#include <gtest/gtest.h>

namespace simcap {
namespace {

TEST(Iccid, AcceptsTwentyDigitsWithValidCheckDigit) {
  auto id = iccid::parse("89014103211118510720");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->str(), "89014103211118510720");
}

TEST(Iccid, AcceptsNineteenDigits) {
  std::string s = make_iccid("891004234814455936");  // 18-digit body
  ASSERT_EQ(s.size(), 19u);
  auto id = iccid::parse(s);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->str(), s);
}

TEST(Iccid, NineteenAndTwentyDigitKeysDiffer) {
  auto a = iccid::parse(make_iccid("891004234814455936"));
  auto b = iccid::parse(make_iccid("8910042348144559360"));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->key(), b->key());
  EXPECT_EQ(b->str().size(), 20u);
}

TEST(Iccid, RejectsBadLength) {
  EXPECT_EQ(iccid::parse("890141032111185107").error(), iccid_error::bad_length);
  EXPECT_EQ(iccid::parse("890141032111185107201").error(), iccid_error::bad_length);
  EXPECT_EQ(iccid::parse("").error(), iccid_error::empty);
}

TEST(Iccid, RejectsNonDigits) {
  EXPECT_EQ(iccid::parse("8901410321111851072A").error(), iccid_error::non_digit);
  EXPECT_EQ(iccid::parse("89014103211118510 720").error(), iccid_error::non_digit);
  EXPECT_EQ(iccid::parse("-8901410321111851072").error(), iccid_error::non_digit);
}

TEST(Iccid, RejectsBadCheckDigit) {
  for (char c = '0'; c <= '9'; ++c) {
    std::string s = "8901410321111851072";
    s.push_back(c);
    auto r = iccid::parse(s);
    if (c == '0') {
      EXPECT_TRUE(r.has_value());
    } else {
      ASSERT_FALSE(r.has_value()) << s;
      EXPECT_EQ(r.error(), iccid_error::bad_check_digit);
    }
  }
}

TEST(Iccid, RejectsMissingTelecomPrefix) {
  std::string s = make_iccid("123456789012345678");
  EXPECT_EQ(iccid::parse(s).error(), iccid_error::bad_prefix);
}

TEST(Iccid, EveryErrorHasAReason) {
  for (auto e : {iccid_error::empty, iccid_error::bad_length, iccid_error::non_digit,
                 iccid_error::bad_prefix, iccid_error::bad_check_digit}) {
    EXPECT_FALSE(describe(e).empty());
  }
}

TEST(Iccid, LuhnMatchesKnownValues) {
  EXPECT_EQ(luhn_check_digit("7992739871"), 3);  // the classic example 79927398713
  EXPECT_EQ(luhn_check_digit("8901410321111851072"), 0);
}

}  // namespace
}  // namespace simcap
