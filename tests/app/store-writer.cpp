/* store-writer: a helper for the store's reliability tests. Opens a project, creates and starts a run,
 * then appends metric batches; after each batch commits it writes "committed B\n" to stdout.
 *   store-writer PROJECT [--batches N] [--batch-steps K] [--sleep-us U]
 * Batch B holds steps [B*K, (B+1)*K) of the metrics "loss" and "acc" (value = step * 0.5, -step).
 * Without --batches it runs until killed; with it, it finishes the run and exits 0.
 *
 * Non-obvious choice: the "committed" lines go out with write(2), not stdio, so the instant
 * appendMetrics() returns the line is in the pipe: a SIGKILL can never lose a report of a commit, and
 * every reported batch must therefore be in the database afterwards.
 */
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "hearth/store/project.h"

using namespace hearth::store;

static void say(const std::string& s) {
  const char* p = s.data();
  size_t n = s.size();
  while (n) {
    ssize_t w = ::write(1, p, n);
    if (w <= 0) std::_Exit(3);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: store-writer PROJECT [--batches N] [--batch-steps K] [--sleep-us U]\n");
    return 2;
  }
  long long batches = -1, steps = 50, sleepUs = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--batches")) batches = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batch-steps")) steps = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--sleep-us")) sleepUs = std::atoll(argv[i + 1]);
  }
  auto fail = [](const hearth::Error& e) {
    std::fprintf(stderr, "store-writer: %s\n", e.to_string().c_str());
    return 1;
  };
  auto project = Project::open(argv[1]);
  if (!project) return fail(project.error());
  Run r;
  r.name = "writer " + std::to_string(::getpid());
  r.config = "{\"helper\": true}";
  auto id = project->createRun(r);
  if (!id) return fail(id.error());
  if (auto s = project->startRun(*id); !s) return fail(s.error());
  say("run " + std::to_string(*id) + "\n");
  std::vector<MetricRecord> batch;
  for (long long b = 0; batches < 0 || b < batches; ++b) {
    batch.clear();
    for (long long s = b * steps; s < (b + 1) * steps; ++s) {
      batch.push_back({"loss", {s, double(s) * 0.5, 1.7e9 + double(s), s * 128}});
      batch.push_back({"acc", {s, -double(s), 1.7e9 + double(s), s * 128}});
    }
    if (auto ok = project->appendMetrics(*id, batch); !ok) return fail(ok.error());
    say("committed " + std::to_string(b) + "\n");
    if (sleepUs) ::usleep(static_cast<useconds_t>(sleepUs));
  }
  if (auto ok = project->finishRun(*id, "{}", "{}", std::nullopt, std::nullopt); !ok) return fail(ok.error());
  say("finished\n");
  return 0;
}
