#include "simcap/iccid.hpp"

#include <cstring>

namespace simcap {

std::string_view describe(iccid_error e) noexcept {
  switch (e) {
    case iccid_error::empty:
      return "ICCID is empty";
    case iccid_error::bad_length:
      return "ICCID must have 19 or 20 digits";
    case iccid_error::non_digit:
      return "ICCID must contain only the digits 0-9";
    case iccid_error::bad_prefix:
      return "ICCID must start with the 89 telecom prefix";
    case iccid_error::bad_check_digit:
      return "ICCID check digit (Luhn) does not match";
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

namespace {

// The plain version: classifies every failure. parse() uses it when its fast path declines.
std::expected<std::uint64_t, iccid_error> parse_scalar(std::string_view s) noexcept {
  if (s.empty()) return std::unexpected(iccid_error::empty);
  for (char c : s) {
    if (c < '0' || c > '9') return std::unexpected(iccid_error::non_digit);
  }
  if (s.size() != 19 && s.size() != 20) return std::unexpected(iccid_error::bad_length);
  if (s[0] != '8' || s[1] != '9') return std::unexpected(iccid_error::bad_prefix);
  std::string_view body = s.substr(0, s.size() - 1);
  if (luhn_check_digit(body) != s.back() - '0')
    return std::unexpected(iccid_error::bad_check_digit);
  std::uint64_t key = 0;
  for (char c : body) key = key * 10 + static_cast<std::uint64_t>(c - '0');
  return key;
}

// Eight ASCII characters as a little-endian word (first character in the lowest byte).
std::uint64_t load8(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

bool all_digits8(std::uint64_t w) noexcept {
  return (w & 0xF0F0F0F0F0F0F0F0ULL) == 0x3030303030303030ULL &&
         ((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) == 0x3030303030303030ULL;
}

// Eight digit values (0-9 per byte, most significant first in memory) as a number.
std::uint64_t value8(std::uint64_t t) noexcept {
  t = (t * 10) + (t >> 8);
  t = (((t & 0x000000FF000000FFULL) * 0x000F424000000064ULL) +
       (((t >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >>
      32;
  return t;
}

// Luhn contribution of eight digit values; `doubled` has 0xFF on the bytes to double.
unsigned luhn8(std::uint64_t t, std::uint64_t doubled) noexcept {
  std::uint64_t d = t & doubled;
  std::uint64_t over4 = ((d + 0x7B7B7B7B7B7B7B7BULL) & 0x8080808080808080ULL) >> 7;  // digit >= 5
  std::uint64_t sum = (d * 2 - over4 * 9) + (t & ~doubled);  // every byte stays <= 18
  return static_cast<unsigned>((sum * 0x0101010101010101ULL) >> 56);
}

}  // namespace

std::expected<iccid, iccid_error> iccid::parse(std::string_view s) noexcept {
  // Fast path for the usual input (this runs once per usage record): 19 or 20 digits checked,
  // converted and Luhn-summed eight at a time, without a serial multiply chain.
  const std::size_t n = s.size();
  if ((n == 19 || n == 20) && s[0] == '8' && s[1] == '9') {
    const std::uint64_t w0 = load8(s.data()), w1 = load8(s.data() + 8);
    bool ok = all_digits8(w0) && all_digits8(w1);
    for (std::size_t i = 16; i < n; ++i) ok &= s[i] >= '0' && s[i] <= '9';
    if (ok) {
      const std::uint64_t t0 = w0 - 0x3030303030303030ULL, t1 = w1 - 0x3030303030303030ULL;
      // Counting from the check digit, every second digit is doubled: the even positions of a
      // 20-digit ICCID, the odd ones of a 19-digit one.
      const std::uint64_t dbl = n == 20 ? 0x00FF00FF00FF00FFULL : 0xFF00FF00FF00FF00ULL;
      unsigned sum = luhn8(t0, dbl) + luhn8(t1, dbl);
      std::uint64_t tail = 0;
      for (std::size_t i = 16; i + 1 < n; ++i) {
        unsigned d = static_cast<unsigned>(s[i] - '0');
        tail = tail * 10 + d;
        sum += ((n - 1 - i) & 1) ? (d * 2 > 9 ? d * 2 - 9 : d * 2) : d;
      }
      const unsigned check = static_cast<unsigned>(s[n - 1] - '0');
      if ((10 - sum % 10) % 10 != check) return std::unexpected(iccid_error::bad_check_digit);
      const std::uint64_t scale = n == 20 ? 1000 : 100;  // digits after the first sixteen
      return iccid{(value8(t0) * 100'000'000 + value8(t1)) * scale + tail};
    }
  }
  auto key = parse_scalar(s);
  if (!key) return std::unexpected(key.error());
  return iccid{*key};
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
