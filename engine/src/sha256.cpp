/* SHA-256 as FIPS 180-4 section 6.2 describes it.
 *
 * Non-obvious choice: the message schedule is computed in place in a 16-word ring instead of the
 * 64-word array of the standard's text; same result, a quarter of the stack traffic per block.
 */
#include "hearth/sha256.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

namespace hearth {
namespace {

constexpr std::uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

}  // namespace

Sha256::Sha256() { reset(); }

void Sha256::reset() {
  m_h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  m_buffered = 0;
  m_totalBytes = 0;
}

void Sha256::compress(const std::uint8_t* block) {
  std::uint32_t w[16];
  for (int i = 0; i < 16; ++i)
    w[i] = (std::uint32_t(block[4 * i]) << 24) | (std::uint32_t(block[4 * i + 1]) << 16) |
           (std::uint32_t(block[4 * i + 2]) << 8) | std::uint32_t(block[4 * i + 3]);
  std::uint32_t a = m_h[0], b = m_h[1], c = m_h[2], d = m_h[3], e = m_h[4], f = m_h[5], g = m_h[6],
                h = m_h[7];
  for (int t = 0; t < 64; ++t) {
    std::uint32_t wt;
    if (t < 16) {
      wt = w[t];
    } else {
      std::uint32_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
      std::uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
      std::uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
      wt = w[t & 15] = w[t & 15] + s0 + w[(t - 7) & 15] + s1;
    }
    std::uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    std::uint32_t ch = (e & f) ^ (~e & g);
    std::uint32_t t1 = h + S1 + ch + K[t] + wt;
    std::uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    std::uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    std::uint32_t t2 = S0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  m_h[0] += a; m_h[1] += b; m_h[2] += c; m_h[3] += d;
  m_h[4] += e; m_h[5] += f; m_h[6] += g; m_h[7] += h;
}

void Sha256::update(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  m_totalBytes += size;
  if (m_buffered) {
    std::size_t take = std::min(size, 64 - m_buffered);
    std::memcpy(m_buffer.data() + m_buffered, p, take);
    m_buffered += take;
    p += take;
    size -= take;
    if (m_buffered < 64) return;
    compress(m_buffer.data());
    m_buffered = 0;
  }
  while (size >= 64) {
    compress(p);
    p += 64;
    size -= 64;
  }
  if (size) {
    std::memcpy(m_buffer.data(), p, size);
    m_buffered = size;
  }
}

std::array<std::uint8_t, 32> Sha256::finish() {
  const std::uint64_t bits = m_totalBytes * 8;
  const std::uint8_t pad = 0x80;
  update(&pad, 1);
  const std::uint8_t zero = 0;
  while (m_buffered != 56) update(&zero, 1);
  std::uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
  update(len, 8);
  std::array<std::uint8_t, 32> out;
  for (int i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<std::uint8_t>(m_h[i] >> 24);
    out[4 * i + 1] = static_cast<std::uint8_t>(m_h[i] >> 16);
    out[4 * i + 2] = static_cast<std::uint8_t>(m_h[i] >> 8);
    out[4 * i + 3] = static_cast<std::uint8_t>(m_h[i]);
  }
  reset();
  return out;
}

std::string Sha256::finish_hex() {
  static const char* digits = "0123456789abcdef";
  auto d = finish();
  std::string s(64, '0');
  for (int i = 0; i < 32; ++i) {
    s[2 * i] = digits[d[i] >> 4];
    s[2 * i + 1] = digits[d[i] & 15];
  }
  return s;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish_hex();
}

Expected<std::string> sha256_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(ErrorCode::io, "cannot open '" + path + "' to hash it");
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
    if (n) h.update(buf.data(), n);
    if (n < buf.size()) break;
  }
  bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) return make_error(ErrorCode::io, "error reading '" + path + "' while hashing it");
  return h.finish_hex();
}

}  // namespace hearth
