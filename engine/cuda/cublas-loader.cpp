/* cuBLAS loaded with dlopen (see cublas-loader.h).
 * Non-obvious choice: the newest soname is tried first (13, then 12, then the unversioned development
 * link), and RTLD_LOCAL keeps its symbols out of the global namespace, so a process that also links a
 * different cuBLAS (a test program, PyTorch in the same process) is not disturbed. */
#include "cublas-loader.h"

#include <dlfcn.h>

#include <mutex>

namespace hearth::cuda {

namespace {

struct Loaded {
  CublasApi api;
  bool ok = false;
  std::string why;
};

Loaded load() {
  Loaded r;
  std::string tried;
  void* lib = nullptr;
  for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
    lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      r.api.library = name;
      break;
    }
    const char* e = ::dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + (e ? e : name);
  }
  if (!lib) {
    r.why = "cuBLAS not found (" + tried + ")";
    return r;
  }
  std::string missing;
  auto sym = [&](const char* name) {
    void* p = ::dlsym(lib, name);
    if (!p) missing += std::string(missing.empty() ? "" : ", ") + name;
    return p;
  };
  r.api.create = reinterpret_cast<CublasApi::CreateFn>(sym("cublasCreate_v2"));
  r.api.destroy = reinterpret_cast<CublasApi::DestroyFn>(sym("cublasDestroy_v2"));
  r.api.set_stream = reinterpret_cast<CublasApi::SetStreamFn>(sym("cublasSetStream_v2"));
  r.api.set_math_mode = reinterpret_cast<CublasApi::SetMathModeFn>(sym("cublasSetMathMode"));
  r.api.gemm_ex = reinterpret_cast<CublasApi::GemmExFn>(sym("cublasGemmEx"));
  r.api.gemm_strided_batched_ex =
      reinterpret_cast<CublasApi::GemmStridedBatchedExFn>(sym("cublasGemmStridedBatchedEx"));
  if (!missing.empty()) {
    r.why = "cuBLAS found (" + r.api.library + ") but it lacks " + missing;
    return r;  // the library stays loaded; harmless
  }
  r.api.status_string = reinterpret_cast<CublasApi::StatusStringFn>(::dlsym(lib, "cublasGetStatusString"));
  r.ok = true;
  return r;
}

}  // namespace

const CublasApi* cublas_api(std::string* why) {
  static std::once_flag once;
  static Loaded loaded;
  std::call_once(once, [] { loaded = load(); });
  if (!loaded.ok) {
    if (why) *why = loaded.why;
    return nullptr;
  }
  return &loaded.api;
}

std::string cublas_status_text(const CublasApi& api, cublasStatus_t s) {
  if (api.status_string) {
    const char* t = api.status_string(s);
    if (t) return t;
  }
  return "cuBLAS status " + std::to_string(int(s));
}

}  // namespace hearth::cuda
