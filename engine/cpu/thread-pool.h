/* Internal: a small fixed pool of worker threads that runs one function on every thread at once
 * (fork-join), used by the CPU kernels to split output rows, attention heads and tokens.
 *
 * Non-obvious choice: workers spin briefly on an atomic generation counter before sleeping on a
 * condition variable. Decoding one token issues a few hundred short jobs; waking sleeping threads for
 * each would cost more than the jobs themselves, while spinning forever would burn idle cores.
 *
 * Thread-safety: run() is called by one owner thread at a time; the function runs on all threads.
 */
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hearth::cpu {

class ThreadPool {
 public:
  // `n_threads` counts the caller, which does a share of every job (1: no extra threads).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return m_n; }
  // Calls fn(index, size()) once on each thread (the caller is index 0); returns when all are done.
  // An exception thrown by fn on a worker is rethrown here.
  void run(const std::function<void(int, int)>& fn);
  // Splits [0, n) into size() contiguous ranges, calls fn(begin, end) for each non-empty one.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker(int index);
  int m_n;
  std::vector<std::thread> m_threads;
  const std::function<void(int, int)>* m_job = nullptr;
  std::atomic<uint64_t> m_generation{0};
  std::atomic<int> m_pending{0};
  std::atomic<bool> m_stop{false};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::exception_ptr m_error;
};

}  // namespace hearth::cpu
