/* Model inspection for the library: what a GGUF file or Hugging Face folder is (architecture,
 * parameters, tensor types, context, the shape the KV cache needs) and its SHA-256, as one value
 * struct that crosses from the worker thread to the GUI thread.
 *
 * Non-obvious choice: describeModel() (open + read the header, no hashing) and inspectModel() (the
 * same plus the SHA-256, with progress and cancellation through QPromise) are separate, because the
 * library re-describes stored models on every start to show their context length and memory needs
 * (the store keeps no hyper-parameters) and that must not re-hash gigabytes.
 *
 * Threading: both functions are reentrant and meant to run on a worker (QtConcurrent::run).
 */
#pragma once

#include <QMetaType>
#include <QPromise>
#include <QString>
#include <QStringList>
#include <cstdint>

#include "hearth/gpu-estimate.h"
#include "hearth/model.h"

namespace hearth::ui {

struct ModelFacts {
  QString path;          // as given (absolute)
  QString name;          // general.name, or the file / folder name
  QString format;        // the store's format: "gguf" or "safetensors" (a Hugging Face folder)
  QString architecture;  // "llama", "qwen2", "qwen3"
  std::int64_t parameters = 0;
  std::int64_t sizeBytes = 0;    // bytes of the files holding weights
  QStringList tensorTypes;       // most frequent first: "F16", "F32"
  std::int64_t contextLength = 0;  // trained context (n_ctx_train)
  std::int64_t nLayer = 0, nHeadKv = 0, headDim = 0;
  ModelParams params;  // the whole shape, for the GPU estimate at any context
  // The context-independent parts of the GPU estimate (gpu-estimate.h), read from the tensors.
  std::uint64_t gpuWeightBytes = 0, gpuDequantBytes = 0;
  QString sha256;  // 64 hex digits; empty when not hashed
  QString error;   // non-empty: the model could not be read (names the file and what is wrong)

  bool ok() const { return error.isEmpty(); }
};

// Opens `path` (a .gguf file or a folder with config.json + safetensors) and describes it; never throws.
ModelFacts describeModel(const QString& path);

// describeModel() and then the SHA-256 of the weight files (a folder: its *.safetensors in name order,
// hashed as one stream). Progress is reported in per mille of bytes hashed; a cancelled promise ends
// with error "cancelled". Always adds exactly one result.
void inspectModel(QPromise<ModelFacts>& promise, const QString& path);

// Bytes the KV cache takes at `nCtx` tokens in F16: 2 (K and V) * n_layer * n_ctx * n_kv_heads * head_dim * 2.
std::int64_t kvCacheBytes(const ModelFacts& f, std::int64_t nCtx);

// The GPU inference estimate at `nCtx` tokens (0: the trained context): the weights and dequantization
// buffer measured by describeModel(), the context-dependent parts from estimate_gpu_inference().
GpuMemoryEstimate gpuEstimate(const ModelFacts& f, std::int64_t nCtx);

// Physical memory of this machine in bytes (0 when unknown).
std::int64_t physicalMemoryBytes();

// "1.23 GB", "512 MB", "980 B" (decimal units, as file managers show sizes).
QString formatBytes(std::int64_t bytes);

}  // namespace hearth::ui

Q_DECLARE_METATYPE(hearth::ui::ModelFacts)
