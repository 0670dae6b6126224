/* Project::interruptRun and Project::resumeRun: the store side of stopping a training run and
 * continuing it under the same id (hearth-cli train --resume).
 * Non-obvious choice: each case also walks the event chain, because an interrupted run's metrics are
 * sealed by a digest and a resumed run appends more; the chain must stay valid across both. */
#include <gtest/gtest.h>

#include "hearth/store/project.h"
#include "must.h"
#include "test-util.h"

namespace {

using namespace hearth::store;
using hearth::test::must;

Project fresh(const std::string& name) {
  auto dir = hearth::test::scratch(name);
  return must(Project::create((dir / "p.hearth").string()));
}

void metric(Project& p, Id run, std::int64_t step, double v) {
  must(p.appendMetrics(run, {MetricRecord{"loss", MetricPoint{step, v, 1.0e9 + double(step), step * 10}}}));
}

TEST(StoreRunResume, InterruptThenResumeThenFinishKeepsMetricsAndChain) {
  Project p = fresh("resume");
  hearth::store::Run r;
  r.name = "train";
  Id id = must(p.createRun(r));
  must(p.startRun(id));
  metric(p, id, 1, 2.5);
  metric(p, id, 2, 2.0);
  must(p.interruptRun(id, "stopped at step 2"));
  hearth::store::Run stopped = must(p.run(id));
  EXPECT_EQ(stopped.status, RunStatus::interrupted);
  EXPECT_EQ(stopped.error, "stopped at step 2");
  EXPECT_TRUE(stopped.finishedAt.has_value());
  EXPECT_TRUE(must(p.verifyChain()).ok);

  must(p.resumeRun(id));
  hearth::store::Run resumed = must(p.run(id));
  EXPECT_EQ(resumed.status, RunStatus::running);
  EXPECT_EQ(resumed.error, "");
  EXPECT_FALSE(resumed.finishedAt.has_value());
  EXPECT_EQ(resumed.startedAt, stopped.startedAt) << "the run keeps its first start time";
  metric(p, id, 3, 1.5);
  must(p.finishRun(id, "{}", "{}", 12.0, std::nullopt));
  EXPECT_EQ(must(p.run(id)).status, RunStatus::finished);
  auto loss = must(p.readMetric(id, "loss"));
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_EQ(loss[2].value, 1.5);
  auto chain = must(p.verifyChain());
  EXPECT_TRUE(chain.ok) << chain.reason;
}

TEST(StoreRunResume, OnlyRunningRunsInterruptAndOnlyEndedOnesResume) {
  Project p = fresh("states");
  hearth::store::Run r;
  Id id = must(p.createRun(r));
  EXPECT_FALSE(p.interruptRun(id, "x")) << "a queued run cannot be interrupted";
  EXPECT_FALSE(p.resumeRun(id)) << "a queued run cannot be resumed";
  must(p.startRun(id));
  EXPECT_FALSE(p.resumeRun(id)) << "a running run cannot be resumed";
  must(p.finishRun(id, "{}", "{}", std::nullopt, std::nullopt));
  auto e = p.resumeRun(id);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("finished"), std::string::npos) << e.error().message;
  EXPECT_FALSE(p.interruptRun(id, "x"));

  Id failed = must(p.createRun(r));
  must(p.startRun(failed));
  must(p.failRun(failed, "disk full"));
  must(p.resumeRun(failed));
  EXPECT_EQ(must(p.run(failed)).status, RunStatus::running);
  EXPECT_FALSE(p.resumeRun(12345)) << "no such run";
}

}  // namespace
