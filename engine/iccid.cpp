#include "simcap/iccid.hpp"

namespace simcap {

std::string_view describe(iccid_error e) noexcept {
  switch (e) {
    case iccid_error::empty: return "ICCID is empty";
    case iccid_error::bad_length: return "ICCID must have 19 or 20 digits";
    case iccid_error::non_digit: return "ICCID must contain only the digits 0-9";
    case iccid_error::bad_prefix: return "ICCID must start with the 89 telecom prefix";
    case iccid_error::bad_check_digit: return "ICCID check digit (Luhn) does not match";
  }
  return "invalid ICCID";
}

int luhn_check_digit(std::string_view body) noexcept {
  // Double every second digit counting from the rightmost digit of the body.
  int sum = 0;
  bool dbl = true;
  for (auto it = body.rbegin(); it != body.rend(); ++it) {
    int d = *it - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return (10 - sum % 10) % 10;
}

std::expected<iccid, iccid_error> iccid::parse(std::string_view s) noexcept {
  // One pass: digits, key and Luhn sum together (this runs once per usage record).
  static constexpr int kDoubled[16] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9, 0, 0, 0, 0, 0, 0};
  const std::size_t n = s.size();
  if (n == 0) return std::unexpected(iccid_error::empty);
  std::uint64_t key = 0;
  int sum = 0;
  bool digits = true;
  for (std::size_t i = 0; i + 1 < n && i < 20; ++i) {
    const unsigned d = static_cast<unsigned char>(s[i]) - '0';
    digits &= d <= 9;
    key = key * 10 + d;
    // Counting from the check digit, every second digit is doubled (d & 15 keeps a non-digit
    // in the table; such input is refused below).
    sum += ((n - 1 - i) & 1) ? kDoubled[d & 15] : static_cast<int>(d & 15);
  }
  const unsigned check = static_cast<unsigned char>(s[n - 1]) - '0';
  if (!digits || check > 9 || n > 20) {
    for (char c : s) {
      if (c < '0' || c > '9') return std::unexpected(iccid_error::non_digit);
    }
  }
  if (n != 19 && n != 20) return std::unexpected(iccid_error::bad_length);
  if (s[0] != '8' || s[1] != '9') return std::unexpected(iccid_error::bad_prefix);
  if ((10 - sum % 10) % 10 != static_cast<int>(check)) {
    return std::unexpected(iccid_error::bad_check_digit);
  }
  return iccid{key};
}

std::size_t iccid::write(char* out) const noexcept {
  char tmp[20];
  std::size_t n = 0;
  for (std::uint64_t k = key_; k != 0; k /= 10) tmp[n++] = static_cast<char>('0' + k % 10);
  for (std::size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  out[n] = static_cast<char>('0' + luhn_check_digit(std::string_view(out, n)));
  return n + 1;
}

std::string iccid::str() const {
  if (key_ == 0) return {};
  char buf[21];
  return std::string(buf, write(buf));
}

std::string make_iccid(std::string_view body) {
  std::string s(body);
  s.push_back(static_cast<char>('0' + luhn_check_digit(body)));
  return s;
}

}  // namespace simcap
