#pragma once
// Little-endian fixed-width encoding for the WAL and snapshot formats, and a
// bounds-checked decoder that never reads past its input.
//
// Thread-safety: values; a Decoder is used by one thread.

#include "core/errc.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace horizon::wal {

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
inline void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xffu));
  out.push_back(static_cast<char>((v >> 8) & 0xffu));
}
inline void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}
inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}
// u32 length + bytes.
inline void put_bytes(std::string& out, std::string_view b) {
  put_u32(out, static_cast<std::uint32_t>(b.size()));
  out.append(b);
}

inline std::uint32_t get_u32_at(std::string_view s, std::size_t pos) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[pos + static_cast<std::size_t>(i)]);
  return v;
}

inline std::uint64_t get_u64_at(std::string_view s, std::size_t pos) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[pos + static_cast<std::size_t>(i)]);
  return v;
}

class Decoder {
 public:
  Decoder(std::string_view data, std::string_view what) : data_(data), what_(what) {}

  bool u8(std::uint8_t& v) { return fixed(v, 1); }
  bool u16(std::uint16_t& v) { return fixed(v, 2); }
  bool u32(std::uint32_t& v) { return fixed(v, 4); }
  bool u64(std::uint64_t& v) { return fixed(v, 8); }
  bool bytes(std::string_view& v) {
    std::uint32_t n;
    if (!u32(n) || n > data_.size() - pos_) return fail();
    v = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == data_.size(); }
  bool ok() const { return ok_; }
  std::size_t position() const { return pos_; }
  // A corruption error naming what was being decoded and where.
  Error error(std::string_view detail = "truncated or malformed") const;

 private:
  template <class T>
  bool fixed(T& v, std::size_t n) {
    if (!ok_ || data_.size() - pos_ < n) return fail();
    std::uint64_t x = 0;
    for (std::size_t i = n; i-- > 0;) x = (x << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    v = static_cast<T>(x);
    pos_ += n;
    return true;
  }
  bool fail() {
    ok_ = false;
    return false;
  }

  std::string_view data_;
  std::string_view what_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace horizon::wal
