/* Model inspection on a worker: hearth::open_model for the facts, the store's Sha256 for the hash.
 *
 * Non-obvious choice: the hash is computed here in 4 MiB chunks instead of with store::sha256File so
 * that a multi-gigabyte import reports progress and can be cancelled between chunks.
 */
#include "model-inspect.h"

#include <unistd.h>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <algorithm>
#include <map>
#include <vector>

#include "hearth/model.h"
#include "hearth/store/sha256.h"
#include "hearth/tensor-types.h"

namespace hearth::ui {
namespace {

// The files whose bytes identify the model: the .gguf itself, or a folder's safetensors shards.
QStringList weightFiles(const QString& path) {
  QFileInfo info(path);
  if (!info.isDir()) return {info.absoluteFilePath()};
  QDir dir(path);
  QStringList out;
  for (const QString& name : dir.entryList({QStringLiteral("*.safetensors")}, QDir::Files, QDir::Name))
    out << dir.absoluteFilePath(name);
  return out;
}

}  // namespace

ModelFacts describeModel(const QString& path) {
  ModelFacts f;
  f.path = QFileInfo(path).absoluteFilePath();
  try {
    QFileInfo info(f.path);
    if (!info.exists()) {
      f.error = QObject::tr("%1: no such file or folder").arg(f.path);
      return f;
    }
    auto model = open_model(std::filesystem::path(f.path.toStdString()));
    if (!model) {
      f.error = QString::fromStdString(model.error().to_string());
      return f;
    }
    const ModelDesc& d = model->desc();
    f.name = QString::fromStdString(d.name);
    if (f.name.isEmpty()) f.name = info.isDir() ? QDir(f.path).dirName() : info.completeBaseName();
    f.format = d.format == ModelFormat::gguf ? QStringLiteral("gguf") : QStringLiteral("safetensors");
    f.architecture = QString::fromLatin1(architecture_name(d.params.arch));
    f.parameters = d.n_params;
    f.sizeBytes = static_cast<std::int64_t>(d.file_size);
    f.contextLength = d.params.n_ctx_train;
    f.nLayer = d.params.n_layer;
    f.nHeadKv = d.params.n_head_kv;
    f.headDim = d.params.head_dim;
    f.params = d.params;
    const GpuMemoryEstimate gpu = estimate_gpu_inference(d, 0);
    f.gpuWeightBytes = gpu.weights;
    f.gpuDequantBytes = gpu.dequant;
    std::map<std::string, int> counts;
    for (const TensorRef* t : d.all_tensors()) counts[type_name(t->type)]++;
    std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second > b.second; });
    for (auto& [name, n] : sorted) f.tensorTypes << QString::fromStdString(name);
  } catch (const std::exception& e) {
    f.error = QObject::tr("%1: %2").arg(f.path, QString::fromUtf8(e.what()));
  }
  return f;
}

GpuMemoryEstimate gpuEstimate(const ModelFacts& f, std::int64_t nCtx) {
  ModelDesc shape;  // no tensors: weights and dequant come from the facts
  shape.params = f.params;
  GpuMemoryEstimate e = estimate_gpu_inference(shape, nCtx);
  e.weights = f.gpuWeightBytes;
  e.dequant = f.gpuDequantBytes;
  e.total = e.weights + e.kv_cache + e.activations + e.dequant + e.overhead;
  return e;
}

void inspectModel(QPromise<ModelFacts>& promise, const QString& path) {
  promise.setProgressRange(0, 1000);
  promise.setProgressValueAndText(0, QObject::tr("Reading %1").arg(QFileInfo(path).fileName()));
  ModelFacts f = describeModel(path);
  if (!f.ok()) {
    promise.addResult(f);
    return;
  }
  try {
    const QStringList files = weightFiles(f.path);
    std::int64_t total = 0, done = 0;
    for (const QString& file : files) total += QFileInfo(file).size();
    store::Sha256 hash;
    std::vector<char> buffer(4 << 20);
    for (const QString& name : files) {
      QFile file(name);
      if (!file.open(QIODevice::ReadOnly)) {
        f.error = QObject::tr("%1: cannot read (%2)").arg(name, file.errorString());
        promise.addResult(f);
        return;
      }
      for (;;) {
        if (promise.isCanceled()) {
          f.error = QObject::tr("cancelled");
          promise.addResult(f);
          return;
        }
        qint64 n = file.read(buffer.data(), static_cast<qint64>(buffer.size()));
        if (n < 0) {
          f.error = QObject::tr("%1: read failed (%2)").arg(name, file.errorString());
          promise.addResult(f);
          return;
        }
        if (n == 0) break;
        hash.update(buffer.data(), static_cast<std::size_t>(n));
        done += n;
        if (total > 0)
          promise.setProgressValueAndText(static_cast<int>(done * 1000 / total),
                                          QObject::tr("Hashing %1").arg(QFileInfo(name).fileName()));
      }
    }
    f.sha256 = QString::fromStdString(hash.finishHex());
  } catch (const std::exception& e) {
    f.error = QObject::tr("%1: %2").arg(f.path, QString::fromUtf8(e.what()));
  }
  promise.setProgressValue(1000);
  promise.addResult(f);
}

std::int64_t kvCacheBytes(const ModelFacts& f, std::int64_t nCtx) {
  return 2 * f.nLayer * nCtx * f.nHeadKv * f.headDim * 2;
}

std::int64_t physicalMemoryBytes() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long pageSize = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || pageSize <= 0) return 0;
  return static_cast<std::int64_t>(pages) * pageSize;
}

QString formatBytes(std::int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return QStringLiteral("%1 GB").arg(b / 1e9, 0, 'f', 2);
  if (b >= 1e6) return QStringLiteral("%1 MB").arg(b / 1e6, 0, 'f', 1);
  if (b >= 1e3) return QStringLiteral("%1 kB").arg(b / 1e3, 0, 'f', 1);
  return QStringLiteral("%1 B").arg(bytes);
}

}  // namespace hearth::ui
