/* Internal: cuBLAS loaded at run time (dlopen), so that the engine never links it: a CUDA-built
 * hearth-cli starts on a machine with only the NVIDIA driver (or none), and only prefill needs cuBLAS.
 *
 * Non-obvious choice: the function pointer types are spelled out here from <cublas_api.h>'s
 * declarations instead of decltype(&cublasGemmEx), because that header overloads cublasGemmEx and
 * cublasGemmStridedBatchedEx (inline wrappers taking the old cudaDataType compute type), which makes the
 * addresses ambiguous.
 *
 * Thread-safety: cublas_api() loads once per process (std::call_once) and may be called from any thread;
 * the table it returns is immutable. A cuBLAS handle is still used by one thread at a time.
 */
#pragma once

#include <cublas_api.h>

#include <string>

namespace hearth::cuda {

struct CublasApi {
  using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
  using DestroyFn = cublasStatus_t (*)(cublasHandle_t);
  using SetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
  using SetMathModeFn = cublasStatus_t (*)(cublasHandle_t, cublasMath_t);
  using GemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                      const void*, const void*, cudaDataType, int, const void*, cudaDataType, int,
                                      const void*, void*, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  using GemmStridedBatchedExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                                    int, const void*, const void*, cudaDataType, int, long long,
                                                    const void*, cudaDataType, int, long long, const void*, void*,
                                                    cudaDataType, int, long long, int, cublasComputeType_t,
                                                    cublasGemmAlgo_t);
  using StatusStringFn = const char* (*)(cublasStatus_t);

  CreateFn create = nullptr;            // cublasCreate_v2
  DestroyFn destroy = nullptr;          // cublasDestroy_v2
  SetStreamFn set_stream = nullptr;     // cublasSetStream_v2
  SetMathModeFn set_math_mode = nullptr;  // cublasSetMathMode
  GemmExFn gemm_ex = nullptr;           // cublasGemmEx
  GemmStridedBatchedExFn gemm_strided_batched_ex = nullptr;  // cublasGemmStridedBatchedEx (the trainer's)
  StatusStringFn status_string = nullptr;  // cublasGetStatusString (may be null: older libraries)
  std::string library;                  // the file that was loaded, e.g. "libcublas.so.13"
};

// The loaded API, or nullptr with `why` (when given) set to a one-line reason such as
// "cuBLAS not found (tried libcublas.so.13, libcublas.so.12, libcublas.so: ...)". Never unloads.
const CublasApi* cublas_api(std::string* why = nullptr);

// "CUBLAS_STATUS_NOT_SUPPORTED" (or "cuBLAS status 15" without the library's string function).
std::string cublas_status_text(const CublasApi& api, cublasStatus_t s);

}  // namespace hearth::cuda
