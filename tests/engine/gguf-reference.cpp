/* Reference test (label `reference`): Hearth's GGUF reader and dequantizers against the independent numpy
 * reader/dequantizer in tests/reference/gguf_dequant.py.
 *
 * Non-obvious choice: besides tensors our own quantizer made, every supported type also gets a tensor of
 * random bytes, so the decoders are compared on arbitrary bit patterns (every scale code, every high bit,
 * NaN/Inf halves) and not only on blocks our encoder would ever emit.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "hearth/gguf.h"
#include "test-util.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

struct Comparison {
  double max_abs = 0, max_rel = 0;
  size_t mismatched = 0;  // elements off by more than the tolerance
};

// NaN must match NaN, infinities must match exactly, finite values within `tol` relative.
Comparison compare(const std::vector<float>& got, const std::vector<float>& ref, double tol) {
  Comparison c;
  for (size_t i = 0; i < got.size(); ++i) {
    const double a = got[i], b = ref[i];
    if (std::isnan(a) || std::isnan(b)) {
      if (!(std::isnan(a) && std::isnan(b))) ++c.mismatched;
      continue;
    }
    if (std::isinf(a) || std::isinf(b)) {
      if (a != b) ++c.mismatched;
      continue;
    }
    const double abs = std::fabs(a - b);
    const double rel = abs / std::max(std::fabs(b), 1e-30);
    c.max_abs = std::max(c.max_abs, abs);
    if (abs > 0) c.max_rel = std::max(c.max_rel, rel);
    if (abs > 0 && rel > tol) ++c.mismatched;
  }
  return c;
}

struct RefTensor {
  std::string name;
  std::vector<float> values;
};

// Runs the numpy script on `gguf` and loads what it wrote.
std::vector<RefTensor> numpy_dequantize(const fs::path& gguf, const fs::path& out) {
  const std::string cmd = std::string("'") + HEARTH_PYTHON + "' '" +
                          test::source_dir("tests/reference/gguf_dequant.py").string() + "' '" + gguf.string() +
                          "' --out '" + out.string() + "'";
  auto r = test::run(cmd);
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.err;
  std::vector<RefTensor> tensors;
  std::ifstream man(out / "manifest.txt");
  std::string line;
  while (std::getline(man, line)) {
    std::istringstream ss(line);
    size_t index, n;
    RefTensor t;
    ss >> index >> n;
    ss.get();
    std::getline(ss, t.name);
    t.values.resize(n);
    std::ifstream in(out / (std::to_string(index) + ".f32"), std::ios::binary);
    in.read(reinterpret_cast<char*>(t.values.data()), std::streamsize(n * sizeof(float)));
    EXPECT_EQ(size_t(in.gcount()), n * sizeof(float)) << t.name;
    tensors.push_back(std::move(t));
  }
  return tensors;
}

// Compares every tensor of `path` with numpy; returns the worst relative error.
double check_file(const fs::path& path, const fs::path& scratch, double tol) {
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f) << f.error().message;
  if (!f) return INFINITY;
  auto ref = numpy_dequantize(path, scratch / "numpy");
  EXPECT_EQ(ref.size(), f->tensors().size());
  double worst = 0;
  for (size_t i = 0; i < std::min(ref.size(), f->tensors().size()); ++i) {
    const GgufTensorInfo& t = f->tensors()[i];
    EXPECT_EQ(ref[i].name, t.name);
    auto got = f->read_f32(t);
    EXPECT_TRUE(got) << got.error().message;
    if (!got) continue;
    EXPECT_EQ(got->size(), ref[i].values.size()) << t.name;
    if (got->size() != ref[i].values.size()) continue;
    Comparison c = compare(*got, ref[i].values, tol);
    std::printf("  %-24s %-5s %7zu values  max abs err %.3g  max rel err %.3g\n", t.name.c_str(),
                type_name(t.type), got->size(), c.max_abs, c.max_rel);
    EXPECT_EQ(c.mismatched, 0u) << t.name << " (" << type_name(t.type) << ")";
    worst = std::max(worst, c.max_rel);
  }
  return worst;
}

}  // namespace

TEST(GgufReference, EverySupportedTypeMatchesNumpy) {
  std::mt19937_64 rng(2024);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(-3.0f, 2.0f);
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", "reference tensors");
  int n_quantized = 0, n_raw = 0;
  for (uint32_t id = 0; id < 64; ++id) {
    if (!is_known_type(id) || !type_traits(GgmlType(id))->supported) continue;
    const GgmlType type = GgmlType(id);
    const TypeTraits* tr = type_traits(type);
    if (can_quantize(type)) {
      // Values from our own quantizer: rows of different scales and offsets, never all zero.
      const int64_t row = 512, rows = 3;
      std::vector<float> v(size_t(row * rows));
      for (int64_t r = 0; r < rows; ++r) {
        const float scale = std::pow(10.0f, ud(rng)), shift = r == 1 ? scale : 0.0f;
        for (int64_t i = 0; i < row; ++i) v[size_t(r * row + i)] = nd(rng) * scale + shift;
      }
      ASSERT_TRUE(w.add_tensor_f32(std::string("q.") + tr->name, {row, rows}, v.data(), type));
      ++n_quantized;
    }
    // Arbitrary bit patterns: 8 blocks of random bytes.
    const int64_t row = tr->block_size * 4;
    std::vector<uint8_t> raw(size_t(*type_nbytes(type, uint64_t(row * 2))));
    for (auto& b : raw) b = uint8_t(rng());
    ASSERT_TRUE(w.add_tensor_raw(std::string("raw.") + tr->name, {row, 2}, type, raw.data(), raw.size()));
    ++n_raw;
  }
  EXPECT_GE(n_quantized, 11);
  EXPECT_GE(n_raw, 13);
  auto dir = test::scratch("gguf-reference");
  auto path = dir / "every-type.gguf";
  ASSERT_TRUE(w.write(path));
  const double worst = check_file(path, dir, 1e-6);
  std::printf("every supported type: %d quantized + %d random-byte tensors, max relative error vs numpy %.3g\n",
              n_quantized, n_raw, worst);
}

TEST(GgufReference, TinyLlamaModelMatchesNumpy) {
  auto dir = test::scratch("gguf-reference-model");
  const double worst = check_file(test::testdata("models/llama-2-tiny-random.gguf"), dir, 1e-6);
  std::printf("llama-2-tiny-random.gguf: max relative error vs numpy %.3g\n", worst);
}
