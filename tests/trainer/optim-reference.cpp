/* AdamW and clip_grad_norm against PyTorch: the test writes parameters and per-step gradients,
 * tests/reference/torch_adamw.py applies torch.optim.AdamW / clip_grad_norm_, and every value after
 * every step must agree within 1e-6 relative.
 *
 * Non-obvious choice: one Python run per test covers several optimizer settings (two param groups,
 * weight decay on and off, other betas and eps, a warmup-cosine learning rate per step), because
 * starting torch costs seconds while the steps themselves cost nothing.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "hearth/trainer/optim.h"
#include "test-util.h"

using namespace hearth::train;
using nlohmann::json;

namespace {

std::vector<float> randn(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

json run_reference(const json& cases, const std::string& tag) {
  auto dir = hearth::test::scratch("torch-" + tag);
  hearth::test::write_text(dir / "in.json", json{{"cases", cases}}.dump());
  auto r = hearth::test::run(std::string("'") + HEARTH_PYTHON + "' '" +
                             hearth::test::source_dir("tests/reference/torch_adamw.py").string() + "' '" +
                             (dir / "in.json").string() + "' '" + (dir / "out.json").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return json();
  return json::parse(hearth::test::read_text(dir / "out.json"))["results"];
}

// |a - b| <= 1e-6 · max(|b|, 1e-3): relative, with a floor for values that pass near zero.
double rel_err(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-3); }

struct Case {
  std::vector<Param> params;
  std::vector<std::vector<std::vector<float>>> grads;  // [param][step]
  AdamWSettings s;
  std::vector<double> lrs;
};

json case_json(const Case& c) {
  json j = {{"kind", "adamw"}, {"betas", {c.s.beta1, c.s.beta2}}, {"eps", c.s.eps},
            {"weight_decay", c.s.weight_decay}, {"lrs", c.lrs}, {"params", json::array()}};
  for (size_t i = 0; i < c.params.size(); ++i)
    j["params"].push_back({{"shape", c.params[i].shape}, {"value", c.params[i].value},
                           {"decay", c.params[i].decay}, {"grads", c.grads[i]}});
  return j;
}

Case make_case(std::mt19937& rng, AdamWSettings s, std::vector<double> lrs, bool with_no_decay) {
  Case c;
  c.s = s;
  c.lrs = std::move(lrs);
  auto add = [&](std::string name, std::vector<int64_t> shape, bool decay, float gscale) {
    Param p;
    p.name = std::move(name);
    p.shape = std::move(shape);
    p.decay = decay;
    p.value = randn(rng, size_t(p.numel()), 1.0f);
    p.grad.assign(p.value.size(), 0.0f);
    std::vector<std::vector<float>> g;
    for (size_t t = 0; t < c.lrs.size(); ++t) {
      auto gt = randn(rng, p.value.size(), gscale);
      gt[0] = 0.0f;                  // a coordinate that never gets a gradient
      gt[1] = 1e-7f * gt[1 % gt.size()];  // one with a tiny gradient (eps matters)
      g.push_back(std::move(gt));
    }
    c.params.push_back(std::move(p));
    c.grads.push_back(std::move(g));
  };
  add("w1", {7, 5}, true, 0.5f);
  if (with_no_decay) add("norm", {13}, false, 2.0f);
  add("w2", {3, 11}, true, 1e-3f);
  return c;
}

}  // namespace

TEST(OptimReference, AdamWMatchesTorchEveryStep) {
  std::mt19937 rng(1234);
  std::vector<Case> cases;
  {
    std::vector<double> lrs;
    for (int s = 0; s < 10; ++s) lrs.push_back(learning_rate(ScheduleKind::cosine, 1e-2, s, 10, 3, 0.1));
    cases.push_back(make_case(rng, AdamWSettings{0.9, 0.999, 1e-8, 0.1}, lrs, true));
  }
  cases.push_back(make_case(rng, AdamWSettings{0.8, 0.95, 1e-6, 0.01}, std::vector<double>(6, 3e-3), false));
  cases.push_back(make_case(rng, AdamWSettings{0.9, 0.999, 1e-8, 0.0}, std::vector<double>(5, 1e-1), true));
  json in = json::array();
  for (const auto& c : cases) in.push_back(case_json(c));
  json out = run_reference(in, "adamw");
  ASSERT_TRUE(out.is_array());
  ASSERT_EQ(out.size(), cases.size());

  for (size_t k = 0; k < cases.size(); ++k) {
    Case& c = cases[k];
    std::vector<Param*> ptrs;
    for (auto& p : c.params) ptrs.push_back(&p);
    AdamW opt(ptrs, c.s);
    double max_err = 0;
    for (size_t t = 0; t < c.lrs.size(); ++t) {
      for (size_t i = 0; i < c.params.size(); ++i) c.params[i].grad = c.grads[i][t];
      opt.step(c.lrs[t]);
      const json& ref = out[k]["steps"][t];
      for (size_t i = 0; i < c.params.size(); ++i) {
        ASSERT_EQ(ref[i].size(), c.params[i].value.size());
        for (size_t j = 0; j < c.params[i].value.size(); ++j) {
          const double e = rel_err(c.params[i].value[j], ref[i][j].get<double>());
          max_err = std::max(max_err, e);
          ASSERT_LE(e, 1e-6) << "case " << k << " step " << t + 1 << " param " << c.params[i].name << "[" << j
                             << "]: hearth " << c.params[i].value[j] << " torch " << ref[i][j].get<double>();
        }
      }
    }
    EXPECT_EQ(opt.steps_taken(), int64_t(c.lrs.size()));
    std::printf("AdamW case %zu: %zu steps, max relative error vs torch %.3g\n", k, c.lrs.size(), max_err);
  }
}

TEST(OptimReference, ClipGradNormMatchesTorch) {
  std::mt19937 rng(99);
  struct ClipCase {
    double max_norm;
    std::vector<std::vector<float>> grads;
  };
  std::vector<ClipCase> cases = {
      {1.0, {randn(rng, 1000, 0.3f), randn(rng, 17, 2.0f), randn(rng, 20000, 0.01f)}},  // clipped
      {100.0, {randn(rng, 50, 1.0f), randn(rng, 3, 1.0f)}},                             // untouched
      {0.5, {randn(rng, 9000, 1e-4f)}},                                                 // small: untouched
  };
  json in = json::array();
  for (const auto& c : cases) in.push_back({{"kind", "clip"}, {"max_norm", c.max_norm}, {"grads", c.grads}});
  json out = run_reference(in, "clip");
  ASSERT_TRUE(out.is_array());
  ASSERT_EQ(out.size(), cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    std::vector<Param> params(cases[k].grads.size());
    std::vector<Param*> ptrs;
    for (size_t i = 0; i < params.size(); ++i) {
      params[i].name = "p" + std::to_string(i);
      params[i].shape = {int64_t(cases[k].grads[i].size())};
      params[i].value.assign(cases[k].grads[i].size(), 0.0f);
      params[i].grad = cases[k].grads[i];
      ptrs.push_back(&params[i]);
    }
    const double norm = clip_grad_norm(ptrs, cases[k].max_norm);
    const double ref_norm = out[k]["norm"].get<double>();
    EXPECT_LE(std::fabs(norm - ref_norm) / ref_norm, 1e-6) << "case " << k << ": " << norm << " vs " << ref_norm;
    double max_err = 0;
    for (size_t i = 0; i < params.size(); ++i)
      for (size_t j = 0; j < params[i].grad.size(); ++j) {
        const double ref = out[k]["grads"][i][j].get<double>();
        const double e = std::fabs(params[i].grad[j] - ref) / std::max(std::fabs(ref), 1e-12);
        max_err = std::max(max_err, e);
        ASSERT_LE(e, 1e-6) << "case " << k << " grad " << i << "[" << j << "]";
      }
    std::printf("clip case %zu: norm %.9g (torch %.9g), max relative error of grads %.3g\n", k, norm, ref_norm,
                max_err);
  }
}
