#pragma once
// ICCID (ITU-T E.118): 19 or 20 decimal digits, "89" industry prefix, last digit a Luhn check
// digit. Parsed ICCIDs are packed into a 64-bit key: the digits without the check digit (18 or
// 19 of them, which always fit in 64 bits). The check digit is recomputed when formatting.
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace simcap {

enum class iccid_error : std::uint8_t {
  empty,            // nothing given
  bad_length,       // not 19 or 20 digits
  non_digit,        // a character other than 0-9
  bad_prefix,       // does not start with the 89 telecom prefix
  bad_check_digit,  // the Luhn check digit does not match
};

// A short human-readable reason, e.g. "ICCID must have 19 or 20 digits".
std::string_view describe(iccid_error e) noexcept;

// A validated ICCID. Key 0 never denotes a valid ICCID (every key starts with 89).
class iccid {
 public:
  constexpr iccid() = default;
  static constexpr iccid from_key(std::uint64_t key) noexcept { return iccid{key}; }

  static std::expected<iccid, iccid_error> parse(std::string_view text) noexcept;

  constexpr std::uint64_t key() const noexcept { return key_; }
  constexpr bool valid() const noexcept { return key_ != 0; }
  std::string str() const;
  // Writes the 19 or 20 digits to out (at least 20 bytes) and returns the count.
  std::size_t write(char* out) const noexcept;

  friend constexpr bool operator==(iccid a, iccid b) noexcept { return a.key_ == b.key_; }
  friend constexpr auto operator<=>(iccid a, iccid b) noexcept { return a.key_ <=> b.key_; }

 private:
  constexpr explicit iccid(std::uint64_t k) : key_(k) {}
  std::uint64_t key_ = 0;
};

// Luhn check digit for a string of digits (the body without its check digit).
int luhn_check_digit(std::string_view body) noexcept;

// Builds a valid ICCID string from an 18 or 19 digit body starting with 89 by appending the
// Luhn check digit. Used by tools and tests that synthesise fleets.
std::string make_iccid(std::string_view body);

}  // namespace simcap
