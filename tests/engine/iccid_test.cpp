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

// The fast path must agree with the plain definition on every input: random valid ICCIDs,
// and the same with one character changed.
TEST(Iccid, FastPathAgreesWithTheDefinition) {
  std::uint64_t x = 12345;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int i = 0; i < 200000; ++i) {
    std::string body = "89";
    std::size_t len = next() % 2 ? 18 : 19;
    while (body.size() < len) body.push_back(static_cast<char>('0' + next() % 10));
    std::string good = make_iccid(body);
    auto id = iccid::parse(good);
    ASSERT_TRUE(id.has_value()) << good;
    ASSERT_EQ(id->str(), good);
    std::uint64_t key = 0;
    for (char c : body) key = key * 10 + static_cast<std::uint64_t>(c - '0');
    ASSERT_EQ(id->key(), key);
    std::string bad = good;
    std::size_t pos = next() % bad.size();
    char c = static_cast<char>("0123456789/:a "[next() % 14]);
    if (c == bad[pos]) continue;
    bad[pos] = c;
    auto r = iccid::parse(bad);
    // A changed character is either a non-digit, a broken prefix or a wrong check digit
    // (Luhn catches every single-digit change).
    ASSERT_FALSE(r.has_value()) << bad;
    if (c < '0' || c > '9') {
      EXPECT_EQ(r.error(), iccid_error::non_digit) << bad;
    } else if (pos < 2) {
      EXPECT_TRUE(r.error() == iccid_error::bad_prefix || r.error() == iccid_error::bad_check_digit)
          << bad;
    } else {
      EXPECT_EQ(r.error(), iccid_error::bad_check_digit) << bad;
    }
  }
}

}  // namespace
}  // namespace simcap
