#pragma once
// Byte encoding of what the store keeps: keys in big-endian (so they sort by number), values
// in little-endian fixed-width fields. Readers never read past their input: a short value reads
// as zeros and sets `ok` to false.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace simcap::detail {

class key_builder {
 public:
  explicit key_builder(char kind) { s_.push_back(kind); }
  template <class T>
  key_builder& be(T v) {
    static_assert(std::is_unsigned_v<T>);
    for (int i = static_cast<int>(sizeof(T)) - 1; i >= 0; --i)
      s_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  key_builder& text(std::string_view t) {
    s_.append(t);
    return *this;
  }
  const std::string& str() const noexcept { return s_; }

 private:
  std::string s_;
};

template <class T>
T read_be(std::string_view s, std::size_t at) noexcept {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T) && at + i < s.size(); ++i) {
    v = static_cast<T>((v << 8) | static_cast<unsigned char>(s[at + i]));
  }
  return v;
}

class writer {
 public:
  template <class T>
  writer& put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    s_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  writer& text(std::string_view t) {
    put(static_cast<std::uint32_t>(t.size()));
    s_.append(t);
    return *this;
  }
  writer& raw(const void* p, std::size_t n) {
    s_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string& str() noexcept { return s_; }

 private:
  std::string s_;
};

class reader {
 public:
  explicit reader(std::string_view s) : s_(s) {}
  template <class T>
  T get() noexcept {
    T v{};
    if (pos_ + sizeof v > s_.size()) {
      ok = false;
      pos_ = s_.size();
      return v;
    }
    std::memcpy(&v, s_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string text() {
    auto n = get<std::uint32_t>();
    if (pos_ + n > s_.size()) {
      ok = false;
      pos_ = s_.size();
      return {};
    }
    std::string out(s_.substr(pos_, n));
    pos_ += n;
    return out;
  }
  std::size_t left() const noexcept { return s_.size() - pos_; }
  bool ok = true;

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace simcap::detail
