/* A fork-join thread pool for the CPU kernels (see thread-pool.h).
 *
 * Non-obvious choice: the spin phase is bounded by iterations, then a worker sleeps under the mutex;
 * run() always notifies under the same mutex, so a worker that decided to sleep cannot miss a job.
 */
#include "thread-pool.h"

#include <exception>

namespace hearth::cpu {

namespace {
constexpr int SPIN_ITERATIONS = 20000;
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : m_n(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < m_n; ++i) m_threads.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stop.store(true);
    m_generation.fetch_add(1);
  }
  m_cv.notify_all();
  for (auto& t : m_threads) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (m_generation.load(std::memory_order_acquire) == seen && spins < SPIN_ITERATIONS) {
      if (spins % 1024 == 1023) std::this_thread::yield();
      else cpu_relax();
      ++spins;
    }
    if (m_generation.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(m_mutex);
      m_cv.wait(lock, [&] { return m_generation.load() != seen; });
    }
    seen = m_generation.load(std::memory_order_acquire);
    if (m_stop.load()) return;
    try {
      (*m_job)(index, m_n);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (!m_error) m_error = std::current_exception();
    }
    m_pending.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (m_n == 1) {
    fn(0, 1);
    return;
  }
  m_job = &fn;
  m_error = nullptr;
  m_pending.store(m_n - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_generation.fetch_add(1, std::memory_order_acq_rel);
  }
  m_cv.notify_all();
  std::exception_ptr own;
  try {
    fn(0, m_n);
  } catch (...) {
    own = std::current_exception();
  }
  // Wait for the workers; yield once spinning has not helped (an oversubscribed machine would
  // otherwise spin away the time slice the worker needs to finish).
  for (int spins = 0; m_pending.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < SPIN_ITERATIONS) cpu_relax();
    else std::this_thread::yield();
  }
  m_job = nullptr;
  if (own) std::rethrow_exception(own);
  if (m_error) std::rethrow_exception(m_error);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  run([&](int i, int nt) {
    int64_t begin = n * i / nt, end = n * (i + 1) / nt;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace hearth::cpu
