/* Tests of the trainer's CPU operations (trainer/src/ops.h): forward results against naive loops written
 * here independently, every backward against double-precision central finite differences, and
 * run-to-run determinism.
 *
 * Non-obvious choice: the finite-difference check uses the scalar loss L = Σ out ⊙ R (R random, fixed),
 * so the analytic gradient is the backward of dout = R; it starts from non-zero gradient buffers to check
 * that backward functions ACCUMULATE. Error measure: max_i |fd_i − an_i| / max_i |an_i| over the checked
 * elements, tolerance 1e-3 (F32 forward, step 1e-2: truncation ~1e-5, rounding noise ~1e-5).
 */
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "../../trainer/src/ops-internal.h"
#include "../../trainer/src/ops.h"

namespace ops = hearth::train::ops;
using hearth::RopeLayout;
using Vec = std::vector<float>;

namespace {

constexpr double FD_TOL = 1e-3;
constexpr double FD_EPS = 1e-2;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Uniform values in ±[0.1, 1] · scale: never zero.
Vec rand_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  std::bernoulli_distribution sign(0.5);
  Vec v(n);
  for (auto& x : v) x = (sign(rng) ? 1.0f : -1.0f) * mag(rng) * scale;
  return v;
}

double wsum(const Vec& out, const Vec& r) {
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += double(out[i]) * double(r[i]);
  return s;
}

// Compares `grad_minus_start` (analytic gradient: buffer after backward minus its start value) with central
// differences of `loss` with respect to `param`, on up to `max_checks` elements (spread evenly).
double fd_error(const char* what, Vec& param, const Vec& grad_after, const Vec& grad_start,
                const std::function<double()>& loss, size_t max_checks = 400) {
  const size_t n = param.size();
  const size_t step = std::max<size_t>(1, n / max_checks);
  double max_err = 0, max_an = 0;
  for (size_t i = 0; i < n; i += step) {
    const float x0 = param[i];
    const float xp = x0 + float(FD_EPS), xm = x0 - float(FD_EPS);
    param[i] = xp;
    const double lp = loss();
    param[i] = xm;
    const double lm = loss();
    param[i] = x0;
    const double fd = (lp - lm) / (double(xp) - double(xm));
    const double an = double(grad_after[i]) - double(grad_start[i]);
    max_err = std::max(max_err, std::abs(fd - an));
    max_an = std::max(max_an, std::abs(an));
  }
  const double rel = max_err / std::max(max_an, 1e-12);
  std::printf("  FD %-28s max |fd-an| / max |an| = %.2e\n", what, rel);
  EXPECT_GT(max_an, 0.0) << what << ": analytic gradient is all zero";
  return rel;
}

void naive_linear(Vec& y, const Vec& x, const Vec& w, const float* b, int64_t n, int64_t in, int64_t out) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? b[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += double(x[size_t(r * in + i)]) * double(w[size_t(o * in + i)]);
      y[size_t(r * out + o)] = float(s);
    }
}

double max_rel_diff(const Vec& a, const Vec& b) {
  double m = 0, s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    s = std::max(s, std::abs(double(b[i])));
  }
  return m / std::max(s, 1e-30);
}

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override { ops::set_threads(2); }
};

}  // namespace

TEST_F(OpsTest, LinearForwardMatchesTripleLoop) {
  const int64_t n = 7, in = 13, out = 9;
  Vec x = rand_vec(n * in, 1), w = rand_vec(out * in, 2), b = rand_vec(out, 3);
  Vec y(sz(n * out)), ref(sz(n * out));
  ops::linear_forward(y.data(), x.data(), w.data(), b.data(), n, in, out);
  naive_linear(ref, x, w, b.data(), n, in, out);
  EXPECT_LT(max_rel_diff(y, ref), 1e-6);
  ops::linear_forward(y.data(), x.data(), w.data(), nullptr, n, in, out);
  naive_linear(ref, x, w, nullptr, n, in, out);
  EXPECT_LT(max_rel_diff(y, ref), 1e-6);
  // accumulate: y += x W^T + b
  Vec y0 = rand_vec(n * out, 4), ya = y0;
  ops::linear_forward(ya.data(), x.data(), w.data(), b.data(), n, in, out, true);
  naive_linear(ref, x, w, b.data(), n, in, out);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += y0[i];
  EXPECT_LT(max_rel_diff(ya, ref), 1e-6);
}

TEST_F(OpsTest, LinearBackwardFiniteDifferences) {
  const int64_t n = 6, in = 11, out = 8;
  Vec x = rand_vec(n * in, 10), w = rand_vec(out * in, 11), b = rand_vec(out, 12), R = rand_vec(n * out, 13);
  auto loss = [&] {
    Vec y(sz(n * out));
    ops::linear_forward(y.data(), x.data(), w.data(), b.data(), n, in, out);
    return wsum(y, R);
  };
  Vec dx0 = rand_vec(x.size(), 14), dw0 = rand_vec(w.size(), 15), db0 = rand_vec(b.size(), 16);
  Vec dx = dx0, dw = dw0, db = db0;
  ops::linear_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), n, in, out);
  EXPECT_LT(fd_error("linear dx", x, dx, dx0, loss), FD_TOL);
  EXPECT_LT(fd_error("linear dw", w, dw, dw0, loss), FD_TOL);
  EXPECT_LT(fd_error("linear dbias", b, db, db0, loss), FD_TOL);
  // Null gradients are skipped, the others unchanged in value.
  Vec dx2 = dx0;
  ops::linear_backward(dx2.data(), nullptr, nullptr, R.data(), x.data(), w.data(), n, in, out);
  EXPECT_EQ(dx2, dx);
}

TEST_F(OpsTest, GemmAllTransposes) {
  const int64_t m = 5, n = 7, k = 6;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Vec a = rand_vec(m * k, 20 + ta), b = rand_vec(k * n, 30 + tb), c = rand_vec(m * n, 40), c0 = c;
      ops::gemm(ta, tb, m, n, k, 0.5f, a.data(), b.data(), 2.0f, c.data());
      Vec ref(sz(m * n));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t p = 0; p < k; ++p) {
            const float av = ta ? a[size_t(p * m + i)] : a[size_t(i * k + p)];
            const float bv = tb ? b[size_t(j * k + p)] : b[size_t(p * n + j)];
            s += double(av) * double(bv);
          }
          ref[size_t(i * n + j)] = float(0.5 * s + 2.0 * c0[size_t(i * n + j)]);
        }
      EXPECT_LT(max_rel_diff(c, ref), 1e-6) << "trans_a " << ta << " trans_b " << tb;
    }
}

TEST_F(OpsTest, GemmSplitOverThreadsMatchesNaive) {
  // Sizes that make ops::gemm split C over threads, with blocks of uneven width.
  for (int threads : {2, 3}) {
    ops::set_threads(threads);
    for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{130, 70, 300}, {37, 400, 200}, {5, 3000, 64}}) {
      Vec a = rand_vec(m * k, 24), b = rand_vec(k * n, 25), c = rand_vec(m * n, 26), c0 = c;
      ops::gemm(true, false, m, n, k, 1.0f, a.data(), b.data(), 1.0f, c.data());
      Vec ref(sz(m * n));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = c0[sz(i * n + j)];
          for (int64_t p = 0; p < k; ++p) s += double(a[sz(p * m + i)]) * double(b[sz(p * n + j)]);
          ref[sz(i * n + j)] = float(s);
        }
      EXPECT_LT(max_rel_diff(c, ref), 1e-5) << m << "x" << n << "x" << k << " on " << threads << " threads";
    }
  }
}

TEST_F(OpsTest, FastExpIsAccurate) {
  // The vectorizable exp used by the softmaxes and SwiGLU, against the C library, over the range used.
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.0f + 175.0f * float(i) / 200000.0f;
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::abs(double(ops::detail::exp_fast(x)) - ref) / ref);
  }
  std::printf("  exp_fast max relative error %.2e\n", worst);
  EXPECT_LT(worst, 5e-7);
  EXPECT_EQ(ops::detail::exp_fast(0.0f), 1.0f);
  EXPECT_GT(ops::detail::exp_fast(-1000.0f), 0.0f);  // clamped, stays a normal float
  EXPECT_LT(ops::detail::exp_fast(-1000.0f), 1e-37f);
  EXPECT_TRUE(std::isfinite(ops::detail::exp_fast(1000.0f)));
}

TEST_F(OpsTest, RmsNormForwardAndBackward) {
  const int64_t n = 5, d = 12;
  const float eps = 1e-5f;
  Vec x = rand_vec(n * d, 50), w = rand_vec(d, 51), R = rand_vec(n * d, 52);
  Vec y(x.size()), rstd(sz(n));
  ops::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), n, d, eps);
  for (int64_t r = 0; r < n; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += double(x[size_t(r * d + i)]) * x[size_t(r * d + i)];
    const double rs = 1.0 / std::sqrt(ss / double(d) + eps);
    EXPECT_NEAR(rstd[size_t(r)], rs, 1e-6 * rs);
    for (int64_t i = 0; i < d; ++i)
      EXPECT_NEAR(y[size_t(r * d + i)], x[size_t(r * d + i)] * rs * w[size_t(i)], 1e-6);
  }
  auto loss = [&] {
    Vec yy(x.size()), rr(sz(n));
    ops::rmsnorm_forward(yy.data(), rr.data(), x.data(), w.data(), n, d, eps);
    return wsum(yy, R);
  };
  Vec dx0 = rand_vec(x.size(), 53), dw0 = rand_vec(w.size(), 54), dx = dx0, dw = dw0;
  ops::rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), n, d);
  EXPECT_LT(fd_error("rmsnorm dx", x, dx, dx0, loss), FD_TOL);
  EXPECT_LT(fd_error("rmsnorm dw", w, dw, dw0, loss), FD_TOL);
}

TEST_F(OpsTest, PerHeadRmsNormAsQkNorm) {
  // qwen3 q-norm: (B·T, n_head, hd) normalised per head with one (hd) weight, via rmsnorm on head rows.
  const int64_t rows = 3, nh = 4, hd = 8;
  Vec q = rand_vec(rows * nh * hd, 60), w = rand_vec(hd, 61), R = rand_vec(q.size(), 62);
  auto fwd = [&](Vec& y, Vec& rs) { ops::rmsnorm_forward(y.data(), rs.data(), q.data(), w.data(), rows * nh, hd, 1e-6f); };
  Vec y(q.size()), rs(sz(rows * nh));
  fwd(y, rs);
  for (int64_t h = 0; h < rows * nh; ++h) {
    double ss = 0;
    for (int64_t i = 0; i < hd; ++i) ss += double(q[size_t(h * hd + i)]) * q[size_t(h * hd + i)];
    const double r = 1.0 / std::sqrt(ss / double(hd) + 1e-6);
    for (int64_t i = 0; i < hd; ++i) EXPECT_NEAR(y[size_t(h * hd + i)], q[size_t(h * hd + i)] * r * w[size_t(i)], 1e-5);
  }
  auto loss = [&] {
    Vec yy(q.size()), rr(sz(rows * nh));
    fwd(yy, rr);
    return wsum(yy, R);
  };
  Vec dq0 = rand_vec(q.size(), 63), dw0 = rand_vec(w.size(), 64), dq = dq0, dw = dw0;
  ops::rmsnorm_backward(dq.data(), dw.data(), R.data(), q.data(), w.data(), rs.data(), rows * nh, hd);
  EXPECT_LT(fd_error("qk-norm dq", q, dq, dq0, loss), FD_TOL);
  EXPECT_LT(fd_error("qk-norm dw", w, dw, dw0, loss), FD_TOL);
}

namespace {
// Naive RoPE: for head dim pair (i0, i1) at position t, rotate by angle t·f_i (computed in double).
Vec naive_rope(const Vec& x, int64_t B, int64_t T, int64_t nh, int64_t hd, const std::vector<double>& f,
               RopeLayout layout) {
  Vec y = x;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < nh; ++h)
        for (int64_t i = 0; i < hd / 2; ++i) {
          const int64_t base = ((b * T + t) * nh + h) * hd;
          const int64_t i0 = layout == RopeLayout::interleaved ? 2 * i : i;
          const int64_t i1 = layout == RopeLayout::interleaved ? 2 * i + 1 : i + hd / 2;
          const double a = double(t) * f[size_t(i)];
          const double re = x[size_t(base + i0)], im = x[size_t(base + i1)];
          y[size_t(base + i0)] = float(re * std::cos(a) - im * std::sin(a));
          y[size_t(base + i1)] = float(re * std::sin(a) + im * std::cos(a));
        }
  return y;
}
}  // namespace

TEST_F(OpsTest, RopeForwardBothLayoutsAndBackward) {
  const int64_t B = 2, T = 5, nh = 3, hd = 8;
  hearth::ModelParams p;
  p.head_dim = hd;
  p.rope_theta = 100.0f;
  const std::vector<float> f = ops::rope_inv_freq(p);
  ASSERT_EQ(f.size(), size_t(hd / 2));
  const std::vector<double> fd(f.begin(), f.end());
  for (RopeLayout layout : {RopeLayout::half_split, RopeLayout::interleaved}) {
    const char* name = layout == RopeLayout::half_split ? "rope half_split dx" : "rope interleaved dx";
    Vec x = rand_vec(B * T * nh * hd, 70), R = rand_vec(x.size(), 71);
    Vec y = x;
    ops::rope_forward(y.data(), B, T, nh, hd, f, layout);
    EXPECT_LT(max_rel_diff(y, naive_rope(x, B, T, nh, hd, fd, layout)), 1e-6) << name;
    // Backward then forward is the identity (a rotation's inverse).
    Vec z = y;
    ops::rope_backward(z.data(), B, T, nh, hd, f, layout);
    EXPECT_LT(max_rel_diff(z, x), 1e-6) << name;
    auto loss = [&] {
      Vec yy = x;
      ops::rope_forward(yy.data(), B, T, nh, hd, f, layout);
      return wsum(yy, R);
    };
    Vec g = R, zero(x.size(), 0.0f);
    ops::rope_backward(g.data(), B, T, nh, hd, f, layout);
    EXPECT_LT(fd_error(name, x, g, zero, loss), FD_TOL);
  }
  // The layouts agree once each head's dims are permuted: interleaved dim 2i <-> half-split dim i,
  // 2i+1 <-> i + hd/2 (what the GGUF llama converter does to the q/k rows).
  Vec x = rand_vec(B * T * nh * hd, 72), xi(x.size());
  for (int64_t r = 0; r < B * T * nh; ++r)
    for (int64_t i = 0; i < hd / 2; ++i) {
      xi[size_t(r * hd + 2 * i)] = x[size_t(r * hd + i)];
      xi[size_t(r * hd + 2 * i + 1)] = x[size_t(r * hd + i + hd / 2)];
    }
  ops::rope_forward(x.data(), B, T, nh, hd, f, RopeLayout::half_split);
  ops::rope_forward(xi.data(), B, T, nh, hd, f, RopeLayout::interleaved);
  for (int64_t r = 0; r < B * T * nh; ++r)
    for (int64_t i = 0; i < hd / 2; ++i) {
      EXPECT_EQ(xi[size_t(r * hd + 2 * i)], x[size_t(r * hd + i)]);
      EXPECT_EQ(xi[size_t(r * hd + 2 * i + 1)], x[size_t(r * hd + i + hd / 2)]);
    }
  // The double overload rotates identically when given the same values.
  Vec a = rand_vec(B * T * nh * hd, 73), b = a;
  ops::rope_forward(a.data(), B, T, nh, hd, f, RopeLayout::half_split);
  ops::rope_forward(b.data(), B, T, nh, hd, fd, RopeLayout::half_split);
  EXPECT_EQ(a, b);
}

TEST_F(OpsTest, RopeTablesFollowLengthAndFrequencies) {
  // Calls with changing T and frequencies (the op caches its cos/sin table) each match the naive rotation.
  const int64_t nh = 2, hd = 6;
  for (auto [T, theta] : {std::pair<int64_t, float>{5, 100.0f}, {9, 100.0f}, {5, 10000.0f}, {5, 100.0f}}) {
    hearth::ModelParams p;
    p.head_dim = hd;
    p.rope_theta = theta;
    const auto f = ops::rope_inv_freq_f64(p);
    Vec x = rand_vec(2 * T * nh * hd, 74), y = x;
    ops::rope_forward(y.data(), 2, T, nh, hd, f, RopeLayout::interleaved);
    EXPECT_LT(max_rel_diff(y, naive_rope(x, 2, T, nh, hd, f, RopeLayout::interleaved)), 1e-6)
        << "T=" << T << " theta=" << theta;
  }
}

TEST_F(OpsTest, RopeFrequenciesWithScaling) {
  // Expected values written from Hugging Face's definitions (transformers' rope_init functions).
  hearth::ModelParams p;
  p.head_dim = 64;
  p.rope_theta = 500000.0f;
  auto base = [&](int64_t i) { return 1.0 / std::pow(500000.0, double(2 * i) / 64.0); };
  auto f = ops::rope_inv_freq_f64(p);
  ASSERT_EQ(f.size(), 32u);
  for (int64_t i = 0; i < 32; ++i) EXPECT_NEAR(f[size_t(i)], base(i), 1e-12 * base(i));

  p.rope_scaling.kind = hearth::RopeScalingKind::linear;
  p.rope_scaling.factor = 4.0f;
  f = ops::rope_inv_freq_f64(p);
  for (int64_t i = 0; i < 32; ++i) EXPECT_NEAR(f[size_t(i)], base(i) / 4.0, 1e-12 * base(i));

  p.rope_scaling = {hearth::RopeScalingKind::llama3, 8.0f, 1.0f, 4.0f, 8192};
  f = ops::rope_inv_freq_f64(p);
  const double pi = 3.14159265358979323846;
  const double low_wavelen = 8192.0 / 1.0, high_wavelen = 8192.0 / 4.0;
  int n_low = 0, n_mid = 0, n_high = 0;
  for (int64_t i = 0; i < 32; ++i) {
    const double inv = base(i), wavelen = 2 * pi / inv;
    double expect;
    if (wavelen > low_wavelen) {
      expect = inv / 8.0, ++n_low;
    } else if (wavelen < high_wavelen) {
      expect = inv, ++n_high;
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      expect = (1 - smooth) * inv / 8.0 + smooth * inv, ++n_mid;
    }
    EXPECT_NEAR(f[size_t(i)], expect, 1e-6 * expect) << "i=" << i;  // divisors are stored as float
  }
  EXPECT_GT(n_low, 0);
  EXPECT_GT(n_mid, 0);
  EXPECT_GT(n_high, 0);
  const auto ff = ops::rope_inv_freq(p);
  for (size_t i = 0; i < ff.size(); ++i) EXPECT_FLOAT_EQ(ff[i], float(f[i]));

  // A ModelDesc's stored factors (GGUF rope_freqs.weight) are used as the engine uses them.
  hearth::ModelDesc md;
  md.params = p;
  md.params.rope_scaling.factor = 0.0f;  // not recorded in the file
  md.rope_freq_factors.assign(32, 2.0f);
  const auto fm = ops::rope_inv_freq_f64(md);
  for (int64_t i = 0; i < 32; ++i) EXPECT_NEAR(fm[size_t(i)], base(i) / 2.0, 1e-12 * base(i));
  EXPECT_THROW(ops::rope_inv_freq(md.params), std::invalid_argument);
}

namespace {
// Naive causal GQA attention in double; returns out (B·T, nh, hd).
Vec naive_attention(const Vec& q, const Vec& k, const Vec& v, int64_t B, int64_t T, int64_t nh, int64_t nkv,
                    int64_t hd) {
  Vec out(sz(B * T * nh * hd));
  const double scale = 1.0 / std::sqrt(double(hd));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t kh = h / (nh / nkv);
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> s(sz(t + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i)
            d += double(q[size_t(((b * T + t) * nh + h) * hd + i)]) * k[size_t(((b * T + j) * nkv + kh) * hd + i)];
          s[size_t(j)] = d * scale;
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int64_t i = 0; i < hd; ++i) {
          double o = 0;
          for (int64_t j = 0; j <= t; ++j) o += s[size_t(j)] / sum * v[size_t(((b * T + j) * nkv + kh) * hd + i)];
          out[size_t(((b * T + t) * nh + h) * hd + i)] = float(o);
        }
      }
    }
  return out;
}

struct AttnShape {
  int64_t B, T, nh, nkv, hd;
};
}  // namespace

TEST_F(OpsTest, AttentionForwardMatchesNaive) {
  // T = 150 spans three query blocks, the last one partial.
  for (AttnShape s : {AttnShape{2, 5, 4, 2, 8}, AttnShape{1, 150, 4, 2, 8}, AttnShape{2, 7, 3, 3, 4}}) {
    Vec q = rand_vec(s.B * s.T * s.nh * s.hd, 80, 2.0f), k = rand_vec(s.B * s.T * s.nkv * s.hd, 81, 2.0f),
        v = rand_vec(s.B * s.T * s.nkv * s.hd, 82);
    Vec out(q.size()), att(sz(s.B * s.nh * s.T * s.T), 7.0f);
    ops::attention_forward(out.data(), att.data(), q.data(), k.data(), v.data(), s.B, s.T, s.nh, s.nkv, s.hd);
    EXPECT_LT(max_rel_diff(out, naive_attention(q, k, v, s.B, s.T, s.nh, s.nkv, s.hd)), 1e-5) << "T=" << s.T;
    // att holds probabilities: rows sum to 1 over the causal part and are 0 beyond it.
    for (int64_t bh = 0; bh < s.B * s.nh; ++bh)
      for (int64_t t = 0; t < s.T; ++t) {
        const float* row = att.data() + (bh * s.T + t) * s.T;
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += row[j];
        EXPECT_NEAR(sum, 1.0, 1e-5);
        for (int64_t j = t + 1; j < s.T; ++j) ASSERT_EQ(row[j], 0.0f);
      }
  }
}

TEST_F(OpsTest, AttentionBackwardFiniteDifferences) {
  // One thread keeps the ~2000 forward calls quick on a busy machine; attention gives bit-identical
  // results for any thread count (AttentionIndependentOfThreadCount), so this covers them all.
  ops::set_threads(1);
  for (AttnShape s : {AttnShape{2, 5, 4, 2, 4}, AttnShape{1, 4, 2, 2, 6}, AttnShape{1, 70, 2, 1, 4}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " n_head=" + std::to_string(s.nh) +
                 " n_head_kv=" + std::to_string(s.nkv));
    Vec q = rand_vec(s.B * s.T * s.nh * s.hd, 90), k = rand_vec(s.B * s.T * s.nkv * s.hd, 91),
        v = rand_vec(s.B * s.T * s.nkv * s.hd, 92), R = rand_vec(q.size(), 93);
    Vec out(q.size()), att(sz(s.B * s.nh * s.T * s.T));
    auto loss = [&] {
      ops::attention_forward(out.data(), att.data(), q.data(), k.data(), v.data(), s.B, s.T, s.nh, s.nkv, s.hd);
      return wsum(out, R);
    };
    loss();
    Vec dq0 = rand_vec(q.size(), 94), dk0 = rand_vec(k.size(), 95), dv0 = rand_vec(v.size(), 96);
    Vec dq = dq0, dk = dk0, dv = dv0;
    ops::attention_backward(dq.data(), dk.data(), dv.data(), R.data(), att.data(), q.data(), k.data(), v.data(),
                            s.B, s.T, s.nh, s.nkv, s.hd);
    const size_t checks = s.T > 10 ? 120 : 400;
    const std::string tag = s.nh != s.nkv ? " (GQA)" : "";
    EXPECT_LT(fd_error(("attention dq" + tag).c_str(), q, dq, dq0, loss, checks), FD_TOL);
    EXPECT_LT(fd_error(("attention dk" + tag).c_str(), k, dk, dk0, loss, checks), FD_TOL);
    EXPECT_LT(fd_error(("attention dv" + tag).c_str(), v, dv, dv0, loss, checks), FD_TOL);
    // Only dv wanted: same dv.
    loss();
    Vec dv2 = dv0;
    ops::attention_backward(nullptr, nullptr, dv2.data(), R.data(), att.data(), q.data(), k.data(), v.data(), s.B,
                            s.T, s.nh, s.nkv, s.hd);
    EXPECT_EQ(dv2, dv);
  }
}

TEST_F(OpsTest, SwigluForwardAndBackward) {
  const int64_t n = 50;
  Vec g = rand_vec(n, 100, 3.0f), u = rand_vec(n, 101), R = rand_vec(n, 102), h(sz(n));
  ops::swiglu_forward(h.data(), g.data(), u.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double gd = g[size_t(i)];
    EXPECT_NEAR(h[size_t(i)], gd / (1 + std::exp(-gd)) * u[size_t(i)], 1e-6);
  }
  auto loss = [&] {
    Vec hh(sz(n));
    ops::swiglu_forward(hh.data(), g.data(), u.data(), n);
    return wsum(hh, R);
  };
  Vec dg0 = rand_vec(n, 103), du0 = rand_vec(n, 104), dg = dg0, du = du0;
  ops::swiglu_backward(dg.data(), du.data(), R.data(), g.data(), u.data(), n);
  EXPECT_LT(fd_error("swiglu dgate", g, dg, dg0, loss), FD_TOL);
  EXPECT_LT(fd_error("swiglu dup", u, du, du0, loss), FD_TOL);
  // One gradient at a time gives the same values.
  Vec dg1 = dg0, du1 = du0;
  ops::swiglu_backward(dg1.data(), nullptr, R.data(), g.data(), u.data(), n);
  ops::swiglu_backward(nullptr, du1.data(), R.data(), g.data(), u.data(), n);
  EXPECT_EQ(dg1, dg);
  EXPECT_EQ(du1, du);
}

TEST_F(OpsTest, EmbeddingForwardAndBackward) {
  const int64_t vocab = 9, d = 70, n = 8;  // d spans two column blocks
  const std::vector<int32_t> tokens = {3, 1, 3, 8, 0, 3, 1, 5};  // repeats must add up
  Vec table = rand_vec(vocab * d, 110), R = rand_vec(n * d, 111), x(sz(n * d));
  ops::embedding_forward(x.data(), table.data(), tokens.data(), n, d);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < d; ++i) ASSERT_EQ(x[size_t(r * d + i)], table[size_t(tokens[size_t(r)] * d + i)]);
  auto loss = [&] {
    Vec xx(sz(n * d));
    ops::embedding_forward(xx.data(), table.data(), tokens.data(), n, d);
    return wsum(xx, R);
  };
  Vec dt0 = rand_vec(table.size(), 112), dt = dt0;
  ops::embedding_backward(dt.data(), R.data(), tokens.data(), n, d);
  EXPECT_LT(fd_error("embedding dtable", table, dt, dt0, loss, 1000), FD_TOL);
  const std::vector<int32_t> bad = {2, -1};
  EXPECT_THROW(ops::embedding_forward(x.data(), table.data(), bad.data(), 2, d), std::out_of_range);
}

namespace {
// Naive mean cross-entropy over counted rows, full logits in double.
double naive_ce_sum(const Vec& x, const Vec& w, const std::vector<int32_t>& t, int64_t n, int64_t d, int64_t V,
                    int64_t* counted) {
  double total = 0;
  *counted = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (t[size_t(r)] < 0) continue;
    ++*counted;
    std::vector<double> l(sz(V));
    double mx = -1e300;
    for (int64_t j = 0; j < V; ++j) {
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += double(x[size_t(r * d + i)]) * w[size_t(j * d + i)];
      l[size_t(j)] = s;
      mx = std::max(mx, s);
    }
    double se = 0;
    for (double e : l) se += std::exp(e - mx);
    total += mx + std::log(se) - l[size_t(t[size_t(r)])];
  }
  return total;
}
}  // namespace

TEST_F(OpsTest, ClassifierLossAndFiniteDifferences) {
  const int64_t n = 10, d = 6, V = 23;
  const std::vector<int32_t> targets = {4, -1, 0, 22, 7, -1, 7, 13, 1, 19};
  Vec x = rand_vec(n * d, 120, 2.0f), w = rand_vec(V * d, 121);
  const float grad_scale = 0.5f;
  int64_t ref_counted = 0;
  const double ref = naive_ce_sum(x, w, targets, n, d, V, &ref_counted);
  std::vector<float> scratch;
  int64_t counted = -1;
  const double got = ops::classifier_forward_backward(nullptr, nullptr, x.data(), w.data(), targets.data(), n, d, V,
                                                      grad_scale, &counted, scratch, 3);
  EXPECT_EQ(counted, 8);
  EXPECT_EQ(counted, ref_counted);
  EXPECT_NEAR(got, ref, 1e-5 * std::abs(ref));
  std::printf("  classifier loss sum %.8f, naive double %.8f\n", got, ref);

  auto loss = [&] {
    std::vector<float> sc;
    int64_t c = 0;
    double s = ops::classifier_forward_backward(nullptr, nullptr, x.data(), w.data(), targets.data(), n, d, V,
                                                grad_scale, &c, sc, 4);
    return double(grad_scale) * s / double(c);
  };
  Vec dx0 = rand_vec(x.size(), 122), dw0 = rand_vec(w.size(), 123), dx = dx0, dw = dw0;
  const double with_grad = ops::classifier_forward_backward(dx.data(), dw.data(), x.data(), w.data(), targets.data(),
                                                            n, d, V, grad_scale, &counted, scratch, 3);
  EXPECT_NEAR(with_grad, got, 1e-6 * std::abs(got));
  EXPECT_LT(fd_error("classifier dx (chunk 3 < n)", x, dx, dx0, loss), FD_TOL);
  EXPECT_LT(fd_error("classifier dw (chunk 3 < n)", w, dw, dw0, loss), FD_TOL);
  // Ignored rows get no gradient.
  for (int64_t i = 0; i < d; ++i) {
    EXPECT_EQ(dx[size_t(1 * d + i)], dx0[size_t(1 * d + i)]);
    EXPECT_EQ(dx[size_t(5 * d + i)], dx0[size_t(5 * d + i)]);
  }
  // A chunk larger than n gives the same loss and gradients (up to rounding).
  Vec dx3 = dx0, dw3 = dw0;
  const double big = ops::classifier_forward_backward(dx3.data(), dw3.data(), x.data(), w.data(), targets.data(), n,
                                                      d, V, grad_scale, &counted, scratch, 64);
  EXPECT_NEAR(big, got, 1e-6 * std::abs(got));
  EXPECT_LT(max_rel_diff(dx3, dx), 1e-5);
  EXPECT_LT(max_rel_diff(dw3, dw), 1e-5);
  // All rows ignored: zero loss, no gradient; a target beyond the vocabulary is an error.
  const std::vector<int32_t> none(sz(n), -1);
  Vec dx4 = dx0;
  EXPECT_EQ(ops::classifier_forward_backward(dx4.data(), nullptr, x.data(), w.data(), none.data(), n, d, V, 1.0f,
                                             &counted, scratch),
            0.0);
  EXPECT_EQ(counted, 0);
  EXPECT_EQ(dx4, dx0);
  std::vector<int32_t> bad = targets;
  bad[3] = int32_t(V);
  EXPECT_THROW(ops::classifier_forward_backward(nullptr, nullptr, x.data(), w.data(), bad.data(), n, d, V, 1.0f,
                                                &counted, scratch),
               std::out_of_range);
}

TEST_F(OpsTest, ClassifierLargeLogitsStayFinite) {
  const int64_t n = 3, d = 4, V = 5;
  Vec x = rand_vec(n * d, 130, 100.0f), w = rand_vec(V * d, 131, 100.0f);  // logits ~1e4
  const std::vector<int32_t> t = {0, 2, 4};
  std::vector<float> scratch;
  int64_t c = 0, rc = 0;
  Vec dx(x.size(), 0.0f), dw(w.size(), 0.0f);
  const double got =
      ops::classifier_forward_backward(dx.data(), dw.data(), x.data(), w.data(), t.data(), n, d, V, 1.0f, &c, scratch);
  const double ref = naive_ce_sum(x, w, t, n, d, V, &rc);
  EXPECT_TRUE(std::isfinite(got));
  EXPECT_NEAR(got, ref, 1e-4 * std::max(1.0, std::abs(ref)));
  for (float g : dx) ASSERT_TRUE(std::isfinite(g));
}

TEST_F(OpsTest, DropoutMaskAndBackward) {
  const int64_t n = 20000;
  const float p = 0.3f;
  Vec x = rand_vec(n, 140), y(sz(n));
  ops::dropout_forward(y.data(), x.data(), n, p, 42);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (y[size_t(i)] != 0.0f) {
      ++kept;
      ASSERT_FLOAT_EQ(y[size_t(i)], x[size_t(i)] / (1 - p));
    }
  }
  EXPECT_NEAR(double(kept) / n, 1.0 - p, 0.01);  // ~3 standard deviations
  // Neighbours are independent: P(both kept) = (1 - p)^2.
  int64_t pairs = 0;
  for (int64_t i = 0; i + 1 < n; ++i) pairs += (y[sz(i)] != 0.0f && y[sz(i + 1)] != 0.0f) ? 1 : 0;
  EXPECT_NEAR(double(pairs) / double(n - 1), (1.0 - p) * (1.0 - p), 0.015);
  // Same seed: same mask with any thread count; another seed: another mask.
  ops::set_threads(1);
  Vec y1(sz(n));
  ops::dropout_forward(y1.data(), x.data(), n, p, 42);
  ops::set_threads(2);
  EXPECT_EQ(y1, y);
  Vec y2(sz(n));
  ops::dropout_forward(y2.data(), x.data(), n, p, 43);
  EXPECT_NE(y2, y);
  // ... and independent of it: the masks agree on p^2 + (1-p)^2 of the elements.
  int64_t agree = 0;
  for (int64_t i = 0; i < n; ++i) agree += ((y[sz(i)] != 0.0f) == (y2[sz(i)] != 0.0f)) ? 1 : 0;
  EXPECT_NEAR(double(agree) / n, p * p + (1 - p) * (1 - p), 0.015);
  // p = 0: identity.
  Vec y0(sz(n));
  ops::dropout_forward(y0.data(), x.data(), n, 0.0f, 42);
  EXPECT_EQ(y0, x);
  // Backward through the same mask, checked by finite differences on a small slice.
  const int64_t m = 300;
  Vec xs(x.begin(), x.begin() + m), R = rand_vec(m, 141);
  auto loss = [&] {
    Vec o(sz(m));
    ops::dropout_forward(o.data(), xs.data(), m, p, 7);
    return wsum(o, R);
  };
  Vec dx0 = rand_vec(m, 142), dx = dx0;
  ops::dropout_backward(dx.data(), R.data(), m, p, 7);
  EXPECT_LT(fd_error("dropout dx", xs, dx, dx0, loss), FD_TOL);
}

TEST_F(OpsTest, RunsAreBitIdentical) {
  // One small layer's worth of ops, twice, with 2 threads: every output must match bit for bit.
  // Sizes large enough that every op splits its work over the threads.
  const int64_t B = 2, T = 256, nh = 4, nkv = 2, hd = 64, E = nh * hd, V = 600;
  auto run = [&](int threads) {
    ops::set_threads(threads);
    const int64_t N = B * T;
    Vec x = rand_vec(N * E, 150), wq = rand_vec(E * E, 151, 0.3f), wk = rand_vec(nkv * hd * E, 152, 0.3f),
        wv = rand_vec(nkv * hd * E, 153, 0.3f), nw = rand_vec(E, 154), wout = rand_vec(V * E, 155, 0.3f);
    std::vector<int32_t> tg(sz(N));
    for (int64_t i = 0; i < N; ++i) tg[size_t(i)] = int32_t((i * 7) % V) - (i % 11 == 0 ? 100 : 0);
    Vec xn(x.size()), rs(sz(N)), q(sz(N * E)), k(sz(N * nkv * hd)), v(k.size()), o(q.size()),
        att(sz(B * nh * T * T));
    ops::rmsnorm_forward(xn.data(), rs.data(), x.data(), nw.data(), N, E, 1e-5f);
    ops::linear_forward(q.data(), xn.data(), wq.data(), nullptr, N, E, E);
    ops::linear_forward(k.data(), xn.data(), wk.data(), nullptr, N, E, nkv * hd);
    ops::linear_forward(v.data(), xn.data(), wv.data(), nullptr, N, E, nkv * hd);
    hearth::ModelParams p;
    p.head_dim = hd;
    const auto f = ops::rope_inv_freq(p);
    ops::rope_forward(q.data(), B, T, nh, hd, f, RopeLayout::half_split);
    ops::rope_forward(k.data(), B, T, nkv, hd, f, RopeLayout::half_split);
    ops::attention_forward(o.data(), att.data(), q.data(), k.data(), v.data(), B, T, nh, nkv, hd);
    std::vector<float> scratch;
    int64_t c = 0;
    Vec dO(o.size(), 0.0f), dwout(wout.size(), 0.0f);
    const double l = ops::classifier_forward_backward(dO.data(), dwout.data(), o.data(), wout.data(), tg.data(), N, E,
                                                      V, 1.0f, &c, scratch, 64);
    Vec dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
    ops::attention_backward(dq.data(), dk.data(), dv.data(), dO.data(), att.data(), q.data(), k.data(), v.data(), B,
                            T, nh, nkv, hd);
    ops::rope_backward(dq.data(), B, T, nh, hd, f, RopeLayout::half_split);
    Vec dxn(xn.size(), 0.0f), dwq(wq.size(), 0.0f), dx(x.size(), 0.0f), dnw(nw.size(), 0.0f);
    ops::linear_backward(dxn.data(), dwq.data(), nullptr, dq.data(), xn.data(), wq.data(), N, E, E);
    ops::rmsnorm_backward(dx.data(), dnw.data(), dxn.data(), x.data(), nw.data(), rs.data(), N, E);
    std::vector<Vec> all = {o, att, dO, dwout, dq, dk, dv, dwq, dx, dnw, Vec{float(l)}};
    return all;
  };
  const auto a = run(2), b = run(2);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "output " << i << " differs between runs";
}

TEST_F(OpsTest, AttentionIndependentOfThreadCount) {
  const int64_t B = 2, T = 70, nh = 4, nkv = 2, hd = 8;
  Vec q = rand_vec(B * T * nh * hd, 160), k = rand_vec(B * T * nkv * hd, 161), v = rand_vec(k.size(), 162),
      dO = rand_vec(q.size(), 163);
  auto run = [&](int threads) {
    ops::set_threads(threads);
    Vec o(q.size()), att(sz(B * nh * T * T)), dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
    ops::attention_forward(o.data(), att.data(), q.data(), k.data(), v.data(), B, T, nh, nkv, hd);
    ops::attention_backward(dq.data(), dk.data(), dv.data(), dO.data(), att.data(), q.data(), k.data(), v.data(), B,
                            T, nh, nkv, hd);
    return std::vector<Vec>{o, att, dq, dk, dv};
  };
  EXPECT_EQ(run(1), run(2));
  EXPECT_EQ(run(3), run(2));
}
