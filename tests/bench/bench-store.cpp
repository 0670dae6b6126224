/* bench-store: throughput of the project store's metric path. Prints a table of
 *   - batched insert rate (points/s) for several batch sizes, one transaction (and one fsync) per batch,
 *   - time to read 1,000,000 points of one metric of one run into memory,
 *   - database size per million points.
 * Usage: bench-store [--dir DIR] [--points N]   (DIR defaults to /tmp; the file is removed afterwards)
 *
 * Non-obvious choice: several metrics are interleaved the way a trainer logs them (loss, lr, grad_norm,
 * tokens/s per step), so the insert figure includes switching between metric names and the read figure
 * is a range scan of one metric among others, not of a table holding nothing else.
 */
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "hearth/store/project.h"

using namespace hearth::store;
using Clock = std::chrono::steady_clock;
using RunRecord = hearth::store::Run;

namespace {

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

template <class T>
T check(hearth::Expected<T>&& r) {
  if (!r) {
    std::fprintf(stderr, "bench-store: %s\n", r.error().to_string().c_str());
    std::exit(1);
  }
  return std::move(*r);
}
void check(hearth::Expected<void>&& r) {
  if (!r) {
    std::fprintf(stderr, "bench-store: %s\n", r.error().to_string().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  std::int64_t points = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--points")) points = std::atoll(argv[i + 1]);
  }
  namespace fs = std::filesystem;
  fs::path file = fs::path(dir) / ("bench-store-" + std::to_string(::getpid()) + ".hearth");
  fs::remove(file);
  auto project = check(Project::create(file.string()));

  std::printf("%-52s %14s\n", "measure", "result");
  std::printf("%-52s %14s\n", "----------------------------------------------------", "--------------");

  // Insert rate for several batch sizes: 4 metrics per step, each run gets `points` points in total.
  const char* names[] = {"loss", "lr", "grad_norm", "tokens_per_s"};
  Id lossRun = 0;
  for (int batchSize : {100, 1000, 10000}) {
    RunRecord r;
    r.name = "bench batch " + std::to_string(batchSize);
    Id run = check(project.createRun(r));
    check(project.startRun(run));
    std::vector<MetricRecord> batch;
    batch.reserve(static_cast<size_t>(batchSize));
    auto t0 = Clock::now();
    std::int64_t written = 0;
    std::int64_t step = 0;
    // Small batches are fsync-bound: 2,000 commits measure their rate as well as 10,000 would.
    const std::int64_t target = std::min<std::int64_t>(points, std::int64_t(batchSize) * 2000);
    while (written < target) {
      batch.clear();
      while (static_cast<int>(batch.size()) < batchSize && written + static_cast<std::int64_t>(batch.size()) < target) {
        for (const char* n : names) {
          if (static_cast<int>(batch.size()) >= batchSize) break;
          batch.push_back({n, {step, 1.0 / double(step + 1), 1.7e9 + double(step) * 0.1, step * 4096}});
        }
        ++step;
      }
      check(project.appendMetrics(run, batch));
      written += static_cast<std::int64_t>(batch.size());
    }
    double s = secondsSince(t0);
    char label[80];
    std::snprintf(label, sizeof label, "insert, batches of %d points (points/s)", batchSize);
    (void)lossRun;
    std::printf("%-52s %14.0f\n", label, double(written) / s);
    check(project.finishRun(run, "{}", "{}", std::nullopt, std::nullopt));
    lossRun = run;
  }

  // The same 1000-point batches without the per-commit fsync: the store's CPU cost alone. (Projects
  // always run with synchronous=FULL; this row only separates CPU time from disk latency.)
  {
    check(project.database().exec("PRAGMA synchronous=OFF"));
    RunRecord r;
    r.name = "bench no fsync";
    Id run = check(project.createRun(r));
    std::vector<MetricRecord> batch;
    const std::int64_t target = std::min<std::int64_t>(points, 1000000);
    auto t0 = Clock::now();
    for (std::int64_t step = 0; step * 4 < target;) {
      batch.clear();
      for (int k = 0; k < 250; ++k, ++step)
        for (const char* n : names)
          batch.push_back({n, {step, 1.0 / double(step + 1), 1.7e9 + double(step) * 0.1, step * 4096}});
      check(project.appendMetrics(run, batch));
    }
    double s = secondsSince(t0);
    std::printf("%-52s %14.0f\n", "insert, batches of 1000 points, no fsync (points/s)", double(target) / s);
    check(project.database().exec("PRAGMA synchronous=FULL"));
  }

  // One metric with exactly `points` points, among three others, for the read test and the size.
  auto sizeNow = [&] {
    check(project.database().exec("PRAGMA wal_checkpoint(TRUNCATE)"));
    return check(project.database().queryInt("PRAGMA page_count")) *
           check(project.database().queryInt("PRAGMA page_size"));
  };
  std::int64_t before = sizeNow();
  RunRecord r;
  r.name = "bench read";
  Id readRun = check(project.createRun(r));
  check(project.startRun(readRun));
  {
    std::vector<MetricRecord> batch;
    for (std::int64_t step = 0; step < points;) {
      batch.clear();
      for (int k = 0; k < 2500 && step < points; ++k, ++step)
        for (const char* n : names)
          batch.push_back({n, {step, 1.0 / double(step + 1), 1.7e9 + double(step) * 0.1, step * 4096}});
      check(project.appendMetrics(readRun, batch));
    }
  }
  std::int64_t after = sizeNow();
  double perMillion = double(after - before) / (4.0 * double(points)) * 1e6;
  (void)lossRun;

  // Read one metric into memory: cold (first read on a fresh connection) and best of 5 warm.
  auto reader = check(Project::open(file.string()));
  auto t0 = Clock::now();
  auto pts = check(reader.readMetric(readRun, "loss"));
  double cold = secondsSince(t0);
  if (static_cast<std::int64_t>(pts.size()) != points) {
    std::fprintf(stderr, "bench-store: read %zu points, expected %lld\n", pts.size(), (long long)points);
    return 1;
  }
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    auto t1 = Clock::now();
    auto again = check(reader.readMetric(readRun, "loss"));
    best = std::min(best, secondsSince(t1));
    if (again.size() != pts.size()) return 1;
  }
  char label[80];
  std::snprintf(label, sizeof label, "read %lld points of one metric, first (ms)", (long long)points);
  std::printf("%-52s %14.1f\n", label, cold * 1e3);
  std::snprintf(label, sizeof label, "read %lld points of one metric, best of 5 (ms)", (long long)points);
  std::printf("%-52s %14.1f\n", label, best * 1e3);
  std::printf("%-52s %14.1f\n", "database size per million points (MiB)", perMillion / (1024.0 * 1024.0));
  std::printf("%-52s %14.1f\n", "database file size at the end (MiB)", double(sizeNow()) / (1024.0 * 1024.0));
  reader = check(Project::open(file.string()));
  project = check(Project::open(file.string()));
  fs::remove(file);
  fs::remove(file.string() + "-wal");
  fs::remove(file.string() + "-shm");
  return 0;
}
