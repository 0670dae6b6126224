/* Reliability tests of the project store (label `integration`): a writer SIGKILLed at random moments
 * 50 times, a full disk (size limit and an injected ENOSPC from a test VFS), a reader and a writer on
 * two threads and in two processes, and several writer processes sharing one hash chain.
 *
 * Non-obvious choice: the writer is a separate program (store-writer) that reports each commit on a
 * pipe with write(2) right after appendMetrics() returns. Whatever it reported before the kill must be
 * in the database, and the number of stored points must be a whole number of batches: that checks
 * both durability ("committed means kept") and atomicity ("a batch is all or nothing").
 */
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "must.h"
#include "hearth/store/project.h"
#include "test-util.h"

extern char** environ;

using namespace hearth::store;
namespace fs = std::filesystem;
using RunRecord = hearth::store::Run;

namespace {

// `steps` steps of two metrics (loss and acc) from `step` on; advances `step` past them.
std::vector<MetricRecord> lossAccBatch(std::int64_t& step, int steps) {
  std::vector<MetricRecord> b;
  for (int i = 0; i < steps; ++i, ++step) {
    b.push_back({"loss", {step, double(step) * 0.5, 1.7e9, step}});
    b.push_back({"acc", {step, -double(step), 1.7e9, step}});
  }
  return b;
}

using hearth::test::must;

// A running store-writer with its stdout on a pipe.
struct Writer {
  pid_t pid = -1;
  int fd = -1;
  std::string output;

  static Writer spawn(const fs::path& project, std::vector<std::string> extra) {
    int p[2];
    if (::pipe(p) != 0) std::abort();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    std::vector<std::string> args = {HEARTH_STORE_WRITER, project.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    Writer w;
    if (posix_spawn(&w.pid, HEARTH_STORE_WRITER, &fa, nullptr, argv.data(), environ) != 0) std::abort();
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    w.fd = p[0];
    return w;
  }
  // Reads whatever arrives until `deadline`; false at EOF.
  bool readUntil(std::chrono::steady_clock::time_point deadline) {
    char buf[4096];
    for (bool firstPoll = true;; firstPoll = false) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 && !firstPoll) return true;  // always look once, even past the deadline
      pollfd pfd{fd, POLLIN, 0};
      int r = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(0, left.count())));
      if (r <= 0) continue;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return false;
      output.append(buf, static_cast<size_t>(n));
    }
  }
  void drain() {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
  }
  int wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    drain();
    ::close(fd);
    return status;
  }
  // "run N" -> N, or 0 when not printed yet.
  Id runId() const {
    auto at = output.find("run ");
    return at == std::string::npos || output.find('\n', at) == std::string::npos ? 0 : std::stoll(output.substr(at + 4));
  }
  // The highest complete "committed B" line, or -1.
  long long lastCommitted() const {
    long long last = -1;
    std::istringstream in(output);
    std::string line;
    while (std::getline(in, line))
      if (!in.eof() && line.rfind("committed ", 0) == 0) last = std::stoll(line.substr(10));
    // getline sets eof on the final line only when it lacks '\n': such a line is incomplete.
    return last;
  }
};

// Points of one series must be steps 0..n-1 of whole batches with the writer's values.
void expectWholeBatches(Project& p, Id run, long long batchSteps, long long atLeastBatches, const char* when) {
  for (const char* name : {"loss", "acc"}) {
    auto pts = must(p.readMetric(run, name));
    ASSERT_EQ(static_cast<long long>(pts.size()) % batchSteps, 0) << when << ": a partial batch of " << name;
    ASSERT_GE(static_cast<long long>(pts.size()), atLeastBatches * batchSteps) << when << ": committed batches lost";
    for (size_t i = 0; i < pts.size(); ++i) {
      ASSERT_EQ(pts[i].step, static_cast<std::int64_t>(i)) << when;
      ASSERT_EQ(pts[i].value, std::strcmp(name, "loss") == 0 ? double(i) * 0.5 : -double(i)) << when;
    }
  }
}

}  // namespace

TEST(StoreReliability, SigkillAtRandomMomentsLosesNothingCommitted) {
  auto dir = hearth::test::scratch("sigkill");
  auto file = dir / "k.hearth";
  must(Project::create(file.string()));
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  constexpr long long STEPS = 50;
  int withCommits = 0, beforeRun = 0;
  for (int i = 0; i < 50; ++i) {
    Writer w = Writer::spawn(file, {"--batch-steps", std::to_string(STEPS)});
    // Even kills: a random moment after the start (often while opening or creating the run). Odd
    // kills: a random moment after the run exists, so a slow, loaded machine still kills mid-batch.
    if (i % 2 == 1) {
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (w.runId() == 0 && std::chrono::steady_clock::now() < until)
        if (!w.readUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(2))) break;
    }
    auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, i % 2 ? 100000 : 250000)(rng));
    w.readUntil(std::chrono::steady_clock::now() + delay);
    ::kill(w.pid, SIGKILL);
    int status = w.wait();
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped on its own: " << w.output;
    const Id run = w.runId();
    const long long last = w.lastCommitted();
    withCommits += last >= 0;
    beforeRun += run == 0;
    SCOPED_TRACE("kill " + std::to_string(i) + " after " + std::to_string(delay.count()) + " us, run " +
                 std::to_string(run) + ", last committed batch " + std::to_string(last));

    auto p = must(Project::open(file.string()));
    ASSERT_EQ(must(p.integrityCheck()), "ok");
    for (const auto& r : must(p.runs())) ASSERT_NE(r.status, RunStatus::running) << "run " << r.id << " still running";
    if (run) {
      EXPECT_EQ(must(p.run(run)).status, RunStatus::interrupted);
      expectWholeBatches(p, run, STEPS, last + 1, "after SIGKILL");
    }
    ASSERT_TRUE(must(p.verifyChain()).ok);
  }
  std::cout << "[ info ] 50 kills: " << withCommits << " after at least one commit, " << beforeRun
            << " before the run existed\n";
  EXPECT_GE(withCommits, 10) << "too few kills landed while batches were being written";
}

TEST(StoreReliability, SizeLimitFullIsACleanErrorAndTheRunContinues) {
  auto dir = hearth::test::scratch("full-limit");
  auto file = dir / "f.hearth";
  auto p = must(Project::create(file.string()));
  Id run = must(p.createRun(RunRecord{}));
  must(p.startRun(run));
  std::int64_t step = 0;
  auto batchOf = [&](int steps) { return lossAccBatch(step, steps); };
  for (int i = 0; i < 10; ++i) must(p.appendMetrics(run, batchOf(100)));
  const std::int64_t committedSteps = step;
  const auto pages = must(p.database().queryInt("PRAGMA page_count"));
  must(p.database().exec("PRAGMA max_page_count = " + std::to_string(pages + 4)));
  hearth::Error err;
  bool failed = false;
  std::int64_t okSteps = committedSteps;
  for (int i = 0; i < 50 && !failed; ++i) {
    std::int64_t before = step;
    auto r = p.appendMetrics(run, batchOf(2000));
    if (r) {
      okSteps = step;
    } else {
      failed = true;
      err = r.error();
      step = before;
    }
  }
  ASSERT_TRUE(failed) << "the size limit never hit";
  EXPECT_EQ(err.code, hearth::ErrorCode::io);
  EXPECT_NE(err.message.find("full"), std::string::npos) << err.to_string();
  EXPECT_NE(err.message.find("run " + std::to_string(run)), std::string::npos) << err.to_string();
  EXPECT_FALSE(err.hint.empty());
  EXPECT_EQ(must(p.integrityCheck()), "ok");
  EXPECT_EQ(static_cast<std::int64_t>(must(p.readMetric(run, "loss")).size()), okSteps) << "the failed batch left points";
  // Space comes back: the same connection continues the run.
  must(p.database().exec("PRAGMA max_page_count = 1073741823"));
  must(p.appendMetrics(run, batchOf(100)));
  must(p.finishRun(run, "{}", "{}", std::nullopt, std::nullopt));
  auto again = must(Project::open(file.string()));
  EXPECT_EQ(must(again.integrityCheck()), "ok");
  EXPECT_TRUE(must(again.verifyChain()).ok);
  expectWholeBatches(again, run, 100, okSteps / 100 + 1, "after the disk filled");
  EXPECT_EQ(must(again.run(run)).status, RunStatus::finished);
}

// ---- an injected ENOSPC: a VFS that forwards to the default one but fails writes past a budget ----

namespace {

sqlite3_vfs* g_realVfs = nullptr;
std::atomic<long long> g_writeBudget{-1};  // bytes still writable; -1 = unlimited
sqlite3_io_methods g_methods;

struct FullFile {
  sqlite3_file base;
  sqlite3_file* real;
};
sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<FullFile*>(f)->real; }

int fullClose(sqlite3_file* f) {
  int rc = real(f)->pMethods->xClose(real(f));
  return rc;
}
int fullRead(sqlite3_file* f, void* b, int n, sqlite3_int64 o) { return real(f)->pMethods->xRead(real(f), b, n, o); }
int fullWrite(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  long long budget = g_writeBudget.load();
  if (budget >= 0) {
    if (n > budget) {
      g_writeBudget = 0;
      return SQLITE_FULL;
    }
    g_writeBudget = budget - n;
  }
  return real(f)->pMethods->xWrite(real(f), b, n, o);
}
int fullTruncate(sqlite3_file* f, sqlite3_int64 s) { return real(f)->pMethods->xTruncate(real(f), s); }
int fullSync(sqlite3_file* f, int fl) { return real(f)->pMethods->xSync(real(f), fl); }
int fullSize(sqlite3_file* f, sqlite3_int64* s) { return real(f)->pMethods->xFileSize(real(f), s); }
int fullLock(sqlite3_file* f, int l) { return real(f)->pMethods->xLock(real(f), l); }
int fullUnlock(sqlite3_file* f, int l) { return real(f)->pMethods->xUnlock(real(f), l); }
int fullCheck(sqlite3_file* f, int* r) { return real(f)->pMethods->xCheckReservedLock(real(f), r); }
int fullControl(sqlite3_file* f, int op, void* a) { return real(f)->pMethods->xFileControl(real(f), op, a); }
int fullSector(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int fullDevice(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }
int fullShmMap(sqlite3_file* f, int i, int s, int e, void volatile** p) {
  return real(f)->pMethods->xShmMap(real(f), i, s, e, p);
}
int fullShmLock(sqlite3_file* f, int o, int n, int fl) { return real(f)->pMethods->xShmLock(real(f), o, n, fl); }
void fullShmBarrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int fullShmUnmap(sqlite3_file* f, int d) { return real(f)->pMethods->xShmUnmap(real(f), d); }

int fullOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* outFlags) {
  auto* ff = reinterpret_cast<FullFile*>(f);
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
  int rc = g_realVfs->xOpen(g_realVfs, name, ff->real, flags, outFlags);
  ff->base.pMethods = ff->real->pMethods ? &g_methods : nullptr;
  return rc;
}

// Registers the VFS as the process default (once); every later connection of this process uses it.
void installFullVfs() {
  static sqlite3_vfs vfs;
  if (g_realVfs) return;
  g_realVfs = sqlite3_vfs_find(nullptr);
  vfs = *g_realVfs;
  vfs.zName = "hearth-test-full";
  vfs.szOsFile = static_cast<int>(sizeof(FullFile)) + g_realVfs->szOsFile;
  vfs.xOpen = fullOpen;
  g_methods = sqlite3_io_methods{};
  g_methods.iVersion = 2;  // no memory-mapped I/O: every page write goes through xWrite
  g_methods.xClose = fullClose;
  g_methods.xRead = fullRead;
  g_methods.xWrite = fullWrite;
  g_methods.xTruncate = fullTruncate;
  g_methods.xSync = fullSync;
  g_methods.xFileSize = fullSize;
  g_methods.xLock = fullLock;
  g_methods.xUnlock = fullUnlock;
  g_methods.xCheckReservedLock = fullCheck;
  g_methods.xFileControl = fullControl;
  g_methods.xSectorSize = fullSector;
  g_methods.xDeviceCharacteristics = fullDevice;
  g_methods.xShmMap = fullShmMap;
  g_methods.xShmLock = fullShmLock;
  g_methods.xShmBarrier = fullShmBarrier;
  g_methods.xShmUnmap = fullShmUnmap;
  sqlite3_vfs_register(&vfs, 1);
}

}  // namespace

TEST(StoreReliability, InjectedEnospcIsACleanErrorWithoutCorruption) {
  installFullVfs();
  auto dir = hearth::test::scratch("full-enospc");
  auto file = dir / "e.hearth";
  auto p = must(Project::create(file.string()));
  Id run = must(p.createRun(RunRecord{}));
  must(p.startRun(run));
  std::int64_t step = 0;
  auto batchOf = [&](int steps) { return lossAccBatch(step, steps); };
  for (int i = 0; i < 5; ++i) must(p.appendMetrics(run, batchOf(100)));
  // The disk fills part-way through writing the next batches' WAL frames.
  int failures = 0;
  std::int64_t okSteps = step;
  for (long long budget : {1000LL, 20000LL, 150000LL}) {
    g_writeBudget = budget;
    std::int64_t before = step;
    auto r = p.appendMetrics(run, batchOf(3000));
    g_writeBudget = -1;
    if (r) {
      okSteps = step;
      continue;
    }
    ++failures;
    step = before;
    EXPECT_EQ(r.error().code, hearth::ErrorCode::io) << r.error().to_string();
    EXPECT_NE(r.error().message.find("full"), std::string::npos) << r.error().to_string();
    EXPECT_EQ(static_cast<std::int64_t>(must(p.readMetric(run, "loss")).size()), okSteps);
    EXPECT_EQ(must(p.integrityCheck()), "ok");
  }
  EXPECT_GE(failures, 2);
  // Space is back: the run continues and finishes; a fresh connection sees a sound file.
  must(p.appendMetrics(run, batchOf(100)));
  must(p.finishRun(run, "{}", "{}", std::nullopt, std::nullopt));
  auto again = must(Project::open(file.string()));
  EXPECT_EQ(must(again.integrityCheck()), "ok");
  EXPECT_TRUE(must(again.verifyChain()).ok);
  expectWholeBatches(again, run, 100, okSteps / 100 + 1, "after ENOSPC");
}

TEST(StoreReliability, ReaderAndWriterOnTwoThreads) {
  auto dir = hearth::test::scratch("threads");
  auto file = dir / "t.hearth";
  Id run = 0;
  {
    auto p = must(Project::create(file.string()));
    run = must(p.createRun(RunRecord{}));
  }
  constexpr int BATCHES = 300, STEPS = 20;
  std::atomic<bool> done{false};
  std::string writerError;
  std::thread writer([&] {
    auto w = Project::open(file.string());
    if (!w) {
      writerError = w.error().to_string();
      done = true;
      return;
    }
    auto s = w->startRun(run);
    for (int b = 0; b < BATCHES && s; ++b) {
      std::vector<MetricRecord> batch;
      for (std::int64_t st = b * STEPS; st < (b + 1) * STEPS; ++st) {
        batch.push_back({"loss", {st, double(st) * 0.5, 1.7e9, st}});
        batch.push_back({"acc", {st, -double(st), 1.7e9, st}});
      }
      s = w->appendMetrics(run, batch);
    }
    if (s) s = w->finishRun(run, "{}", "{}", std::nullopt, std::nullopt);
    if (!s) writerError = s.error().to_string();
    done = true;
  });
  int reads = 0, partial = 0;
  std::string readerError;
  std::thread reader([&] {
    auto r = Project::open(file.string());  // its own connection, on its own thread
    if (!r) {
      readerError = r.error().to_string();
      return;
    }
    size_t prev = 0;
    while (!done) {
      auto pts = r->readMetric(run, "loss");
      if (!pts) {
        readerError = pts.error().to_string();
        return;
      }
      ++reads;
      if (pts->size() % STEPS != 0 || pts->size() < prev) {
        readerError = "read " + std::to_string(pts->size()) + " points after " + std::to_string(prev);
        return;
      }
      for (size_t i = 0; i < pts->size(); ++i)
        if ((*pts)[i].step != static_cast<std::int64_t>(i)) {
          readerError = "gap at " + std::to_string(i);
          return;
        }
      partial += !pts->empty() && pts->size() < size_t(BATCHES * STEPS);
      prev = pts->size();
      // A chart-style range read of the newest part.
      auto tail = r->readMetric(run, "loss", static_cast<std::int64_t>(prev) - 100, INT64_MAX);
      if (!tail) {
        readerError = tail.error().to_string();
        return;
      }
    }
  });
  writer.join();
  reader.join();
  EXPECT_EQ(writerError, "");
  EXPECT_EQ(readerError, "");
  EXPECT_GT(partial, 0) << "the reader never saw the run in progress (" << reads << " reads)";
  auto p = must(Project::open(file.string()));
  EXPECT_EQ(must(p.readMetric(run, "loss")).size(), size_t(BATCHES * STEPS));
  EXPECT_EQ(must(p.run(run)).status, RunStatus::finished);
}

TEST(StoreReliability, ReaderAndWriterInTwoProcesses) {
  auto dir = hearth::test::scratch("processes");
  auto file = dir / "p.hearth";
  must(Project::create(file.string()));
  constexpr int BATCHES = 300, STEPS = 20;
  Writer w = Writer::spawn(file, {"--batches", std::to_string(BATCHES), "--batch-steps", std::to_string(STEPS)});
  // Wait for the run to exist.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (w.runId() == 0 && std::chrono::steady_clock::now() < until)
    if (!w.readUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(5))) break;
  const Id run = w.runId();
  ASSERT_NE(run, 0) << w.output;
  auto r = must(Project::open(file.string()));
  int reads = 0, partial = 0;
  size_t prev = 0;
  bool eof = false;
  while (!eof) {
    eof = !w.readUntil(std::chrono::steady_clock::now() + std::chrono::milliseconds(1));
    auto pts = must(r.readMetric(run, "loss"));
    ++reads;
    ASSERT_EQ(pts.size() % STEPS, 0u) << "a reader saw half a batch";
    ASSERT_GE(pts.size(), prev);
    for (size_t i = 0; i < pts.size(); ++i) ASSERT_EQ(pts[i].step, static_cast<std::int64_t>(i));
    partial += !pts.empty() && pts.size() < size_t(BATCHES * STEPS);
    prev = pts.size();
  }
  int status = w.wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << w.output;
  EXPECT_GT(partial, 0) << "the reader never saw the run in progress (" << reads << " reads)";
  EXPECT_EQ(must(r.readMetric(run, "loss")).size(), size_t(BATCHES * STEPS));
  EXPECT_EQ(must(r.run(run)).status, RunStatus::finished);
}

TEST(StoreReliability, ConcurrentWriterProcessesShareOneIntactChain) {
  auto dir = hearth::test::scratch("writers");
  auto file = dir / "w.hearth";
  must(Project::create(file.string()));
  std::vector<Writer> writers;
  for (int i = 0; i < 3; ++i) writers.push_back(Writer::spawn(file, {"--batches", "40", "--batch-steps", "10"}));
  std::vector<Id> runs;
  for (auto& w : writers) {
    int status = w.wait();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << w.output;
    runs.push_back(w.runId());
  }
  auto p = must(Project::open(file.string()));
  auto report = must(p.verifyChain());
  EXPECT_TRUE(report.ok) << "event " << report.firstBrokenEvent.value_or(0) << ": " << report.reason;
  for (Id run : runs) {
    EXPECT_EQ(must(p.run(run)).status, RunStatus::finished);
    expectWholeBatches(p, run, 10, 40, "after concurrent writers");
  }
}
