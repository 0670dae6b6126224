/* bench-quant-dot: the decode kernels (engine/cpu/quant-dot.h) one at a time, on one thread.
 *
 * For every weight type with an integer kernel and every variant this CPU runs (portable, AVX2,
 * AVX-512 VNNI), it times row dots of 2048-value rows (a) over a matrix that stays in the L2 cache,
 * which gives the kernel's compute rate, and (b) over a 256 MiB matrix read from memory once per pass,
 * which is what decoding does; both as GB/s of weight bytes. The bound for (b) is a plain single-thread
 * read (sum) of the same number of bytes, measured in the same run. Types with an eight-row interleaved
 * layout (quant_dot_x8_variants) also get rows for those kernels over the repacked matrices.
 *
 *   bench-quant-dot [--mib 256] [--types Q8_0,Q4_0,Q4_K,Q6_K,F16]
 *
 * A benchmark program, never a test. Non-obvious choice: the matrix rows are random quantized blocks
 * (quantize() of Gaussian values), never zeros, so the kernels see real scales and branches do not help.
 */
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../engine/cpu/quant-dot.h"
#include "hearth/tensor-types.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

std::vector<uint8_t> random_rows(GgmlType t, int64_t k, int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const uint64_t rb = *row_nbytes(t, k);
  std::vector<uint8_t> out(rb * uint64_t(rows));
  std::vector<float> row(static_cast<size_t>(k));
  // Quantizing 256 MiB row by row is slow; a pool of 64 distinct rows repeated is enough for timing.
  const int64_t distinct = std::min<int64_t>(rows, 64);
  for (int64_t r = 0; r < distinct; ++r) {
    for (auto& v : row) v = nd(rng);
    if (!quantize(t, row.data(), out.data() + rb * uint64_t(r), k)) std::abort();
  }
  for (int64_t r = distinct; r < rows; ++r) std::memcpy(out.data() + rb * uint64_t(r), out.data() + rb * uint64_t(r % distinct), rb);
  return out;
}

// GB/s of weight bytes for dots of every row of `w` against one activation, `passes` times; best pass.
// One Gaussian activation of k values in the kernel's own format.
template <class Kernel>
std::vector<uint8_t> activation(const Kernel& qd, int64_t k) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(k));
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> act(qd.act_row_bytes(k));
  qd.quantize_act(x.data(), act.data(), k);
  return act;
}

double dot_rate(const cpu::QuantDot& qd, const std::vector<uint8_t>& w, uint64_t rb, int64_t k, int passes,
                float* sink) {
  const std::vector<uint8_t> act = activation(qd, k);
  const int64_t rows = int64_t(w.size() / rb);
  double best = 1e30;
  for (int p = 0; p < passes; ++p) {
    auto t0 = Clock::now();
    float s = 0;
    for (int64_t r = 0; r < rows; ++r) s += qd.dot(w.data() + rb * uint64_t(r), act.data(), k);
    best = std::min(best, secs(t0));
    *sink += s;
  }
  return double(w.size()) / best / 1e9;
}

// The same for the eight-row interleaved kernels over the repacked matrix.
double dot8_rate(const cpu::QuantDotX8& qd, const std::vector<uint8_t>& packed, uint64_t rb, int64_t k, int passes,
                 float* sink) {
  const std::vector<uint8_t> act = activation(qd, k);
  const int64_t groups = int64_t(packed.size() / (8 * rb));
  double best = 1e30;
  float y8[8];
  for (int p = 0; p < passes; ++p) {
    auto t0 = Clock::now();
    float s = 0;
    for (int64_t g = 0; g < groups; ++g) {
      qd.dot8(packed.data() + 8 * rb * uint64_t(g), act.data(), k, y8);
      s += y8[0] + y8[7];
    }
    best = std::min(best, secs(t0));
    *sink += s;
  }
  return double(packed.size()) / best / 1e9;
}

std::vector<uint8_t> repacked(const cpu::QuantDotX8& qd, const std::vector<uint8_t>& rows, uint64_t rb, int64_t k) {
  std::vector<uint8_t> out(rows.size() / (8 * rb) * 8 * rb);
  for (size_t g = 0; g < out.size() / (8 * rb); ++g) qd.repack(rows.data() + 8 * rb * g, rb, k, out.data() + 8 * rb * g);
  return out;
}

double read_rate(const std::vector<uint8_t>& buf, int passes, float* sink) {
  const auto* f = reinterpret_cast<const float*>(buf.data());
  const size_t n = buf.size() / 4;
  double best = 1e30;
  for (int p = 0; p < passes; ++p) {
    auto t0 = Clock::now();
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
      s0 += f[i], s1 += f[i + 1], s2 += f[i + 2], s3 += f[i + 3];
      s4 += f[i + 4], s5 += f[i + 5], s6 += f[i + 6], s7 += f[i + 7];
    }
    best = std::min(best, secs(t0));
    *sink += s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
  }
  return double(buf.size()) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t mib = 256;
  std::string types = "Q8_0,Q4_0,Q4_K,Q6_K,F16";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mib" && i + 1 < argc) mib = std::stoll(argv[++i]);
    else if (a == "--types" && i + 1 < argc) types = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench-quant-dot [--mib 256] [--types Q8_0,Q4_0,Q4_K,Q6_K,F16]\n");
      return 2;
    }
  }
  const int64_t k = 2048;
  float sink = 0;
  std::vector<uint8_t> plain(size_t(mib) << 20, 1);
  const double read_gbs = read_rate(plain, 3, &sink);
  plain = {};
  std::printf("one thread; rows of %lld values; memory matrix %lld MiB; plain read %.1f GB/s\n\n", (long long)k,
              (long long)mib, read_gbs);
  std::printf("| type | kernel | L2-resident GB/s | memory GB/s | of plain read |\n|---|---|---:|---:|---:|\n");
  size_t pos = 0;
  while (pos <= types.size()) {
    size_t comma = types.find(',', pos);
    std::string name = types.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? types.size() + 1 : comma + 1;
    auto t = type_from_name(name);
    if (!t) {
      std::fprintf(stderr, "unknown type %s\n", name.c_str());
      return 2;
    }
    const uint64_t rb = *row_nbytes(*t, k);
    auto small = random_rows(*t, k, int64_t((512u << 10) / rb), 1);
    auto big = random_rows(*t, k, int64_t((uint64_t(mib) << 20) / rb), 2);
    for (const cpu::QuantDot* qd : cpu::quant_dot_variants(*t)) {
      const double l2 = dot_rate(*qd, small, rb, k, 200, &sink);
      const double mem = dot_rate(*qd, big, rb, k, 3, &sink);
      std::printf("| %s | %s | %.1f | %.1f | %.2f |\n", name.c_str(), qd->isa, l2, mem, mem / read_gbs);
    }
    const auto x8 = cpu::quant_dot_x8_variants(*t);
    if (!x8.empty()) {
      small = repacked(*x8.front(), small, rb, k);
      big = repacked(*x8.front(), big, rb, k);
      for (const cpu::QuantDotX8* qd : x8) {
        const double l2 = dot8_rate(*qd, small, rb, k, 200, &sink);
        const double mem = dot8_rate(*qd, big, rb, k, 3, &sink);
        std::printf("| %s | %s, 8 rows interleaved | %.1f | %.1f | %.2f |\n", name.c_str(), qd->isa, l2, mem, mem / read_gbs);
      }
    }
  }
  std::fprintf(stderr, "(checksum %g)\n", double(sink));
  return 0;
}
