/* Square cuBLAS GEMMs on device buffers, shared by the NVML energy check (as a steady load) and
 * bench-gpu (as the rate issue 6's prefill and MFU targets are measured against). Test code: failures
 * come back as a message string, empty on success.
 *
 * Non-obvious choice: the inputs are random values in [-1, 1) generated on the host, never zeros or
 * memset patterns, because a GEMM of zeros both runs faster and draws less power than a real one
 * (PyTorch measured 894 against 788 TFLOP/s on an H200 for zeros against random data).
 * BF16 uses BF16 inputs and output with F32 accumulation (cublasGemmEx, CUBLAS_COMPUTE_32F); F32 uses
 * cublasSgemm with the default math mode (no TF32), i.e. the true FP32 rate.
 */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace hearth::gpu_test {

inline std::string cuda_message(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

inline std::string cublas_message(const char* what, cublasStatus_t s) {
  return std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(s));
}

class GemmRunner {
 public:
  enum class Type { f32, bf16 };

  GemmRunner() = default;
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;
  ~GemmRunner() {
    if (m_handle) cublasDestroy(m_handle);
    for (void* p : {m_a, m_b, m_c})
      if (p) cudaFree(p);
  }

  // Allocates A, B (random) and C (n x n each) on the current device and binds a cuBLAS handle to
  // `stream`. Returns "" or what failed.
  std::string init(int n, Type type, cudaStream_t stream) {
    m_n = n;
    m_type = type;
    const std::size_t count = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
    const std::size_t elem = type == Type::f32 ? 4 : 2;
    for (void** p : {&m_a, &m_b, &m_c})
      if (cudaError_t e = cudaMalloc(p, count * elem); e != cudaSuccess) return cuda_message("cudaMalloc", e);
    std::vector<std::uint8_t> host(count * elem);
    std::uint64_t state = 0x9E3779B97F4A7C15ull;
    for (void* dst : {m_a, m_b}) {
      for (std::size_t i = 0; i < count; ++i) {
        state ^= state << 13;  // xorshift64: fast, and plenty random for a power and rate load
        state ^= state >> 7;
        state ^= state << 17;
        float v = static_cast<float>(static_cast<double>(state >> 40) / static_cast<double>(1ull << 23)) - 1.0f;
        if (type == Type::f32) {
          std::memcpy(&host[i * 4], &v, 4);
        } else {
          std::uint32_t bits;
          std::memcpy(&bits, &v, 4);
          std::uint16_t b = static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
          std::memcpy(&host[i * 2], &b, 2);
        }
      }
      if (cudaError_t e = cudaMemcpy(dst, host.data(), host.size(), cudaMemcpyHostToDevice); e != cudaSuccess)
        return cuda_message("cudaMemcpy", e);
    }
    if (cudaError_t e = cudaMemset(m_c, 0, count * elem); e != cudaSuccess) return cuda_message("cudaMemset", e);
    if (cublasStatus_t s = cublasCreate(&m_handle); s != CUBLAS_STATUS_SUCCESS) {
      m_handle = nullptr;
      return cublas_message("cublasCreate", s);
    }
    if (cublasStatus_t s = cublasSetStream(m_handle, stream); s != CUBLAS_STATUS_SUCCESS)
      return cublas_message("cublasSetStream", s);
    return {};
  }

  // Enqueues `count` GEMMs C = A x B on the stream (asynchronous).
  std::string run(int count) {
    const float alpha = 1.0f, beta = 0.0f;
    for (int i = 0; i < count; ++i) {
      cublasStatus_t s;
      if (m_type == Type::f32) {
        s = cublasSgemm(m_handle, CUBLAS_OP_N, CUBLAS_OP_N, m_n, m_n, m_n, &alpha, static_cast<const float*>(m_a),
                        m_n, static_cast<const float*>(m_b), m_n, &beta, static_cast<float*>(m_c), m_n);
      } else {
        s = cublasGemmEx(m_handle, CUBLAS_OP_N, CUBLAS_OP_N, m_n, m_n, m_n, &alpha, m_a, CUDA_R_16BF, m_n, m_b,
                         CUDA_R_16BF, m_n, &beta, m_c, CUDA_R_16BF, m_n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      }
      if (s != CUBLAS_STATUS_SUCCESS) return cublas_message(m_type == Type::f32 ? "cublasSgemm" : "cublasGemmEx", s);
    }
    return {};
  }

  double flops_per_gemm() const { return 2.0 * m_n * static_cast<double>(m_n) * m_n; }

 private:
  int m_n = 0;
  Type m_type = Type::f32;
  void* m_a = nullptr;
  void* m_b = nullptr;
  void* m_c = nullptr;
  cublasHandle_t m_handle = nullptr;
};

}  // namespace hearth::gpu_test
