/* The GPU memory estimate's sentences: see gpu-memory-text.h.
 *
 * Non-obvious choice: the parts are printed as bare numbers with one "GiB" at the end so the sentence
 * stays short enough for the Models page's side panel.
 */
#include "gpu-memory-text.h"

#include <QCoreApplication>
#include <QLocale>
#include <QStringList>

namespace hearth::ui {
namespace {

QString tr(const char* s) { return QCoreApplication::translate("GpuMemoryText", s); }

// " — fits on A (80.00 GiB); does not fit on B (16.00 GiB)" or " — no GPU found: reason"; with a
// `smaller` total (> 0) a GPU that only holds that one "fits on B (16.00 GiB) by recomputing attention".
QString verdicts(std::uint64_t total, const BackendInfo& b, std::uint64_t smaller = 0) {
  if (b.gpus.empty())
    return tr(" — no GPU found: %1").arg(QString::fromStdString(b.cuda_status));
  QStringList parts;
  for (const GpuInfo& g : b.gpus)
    parts << (total <= g.total_memory                      ? tr("fits on %1 (%2 GiB)")
              : smaller > 0 && smaller <= g.total_memory ? tr("fits on %1 (%2 GiB) by recomputing attention")
                                                           : tr("does not fit on %1 (%2 GiB)"))
                 .arg(QString::fromStdString(g.name), gibNumber(g.total_memory));
  return QStringLiteral(" — ") + parts.join(QStringLiteral("; "));
}

}  // namespace

QString gibNumber(std::uint64_t bytes) { return QString::number(double(bytes) / double(1ull << 30), 'f', 2); }

QString gpuInferenceText(const GpuMemoryEstimate& e, std::int64_t nCtx, const BackendInfo& backends) {
  return tr("GPU memory at %1 context: %2 GiB (weights %3, KV cache %4, activations %5, dequant %6, "
            "CUDA allowance %7 GiB)")
             .arg(QLocale().toString(qlonglong(nCtx)), gibNumber(e.total), gibNumber(e.weights),
                  gibNumber(e.kv_cache), gibNumber(e.activations), gibNumber(e.dequant), gibNumber(e.overhead)) +
         verdicts(e.total, backends);
}

QString gpuTrainingText(const train::MemoryEstimate& m, train::Method method, const BackendInfo& backends,
                        std::uint64_t recomputedTotal) {
  if (backends.gpus.empty())
    return tr("No GPU found (%1): runs use the CPU.").arg(QString::fromStdString(backends.cuda_status));
  // Full training in F32 keeps no weight copies besides the F32 parameters: no part to name then.
  const QString weights = method == train::Method::lora ? tr("base weights %1, ")
                          : m.base_weights > 0          ? tr("BF16 weight copies %1, ")
                                                        : QString();
  return tr("GPU memory ≈ %1 GiB (%2trainable parameters %3, gradients %4, AdamW moments %5, "
            "activations %6, CUDA allowance %7 GiB)")
             .arg(gibNumber(m.total), weights.isEmpty() ? weights : weights.arg(gibNumber(m.base_weights)),
                  gibNumber(m.parameters), gibNumber(m.gradients), gibNumber(m.optimizer), gibNumber(m.activations),
                  gibNumber(m.overhead)) +
         verdicts(m.total, backends, recomputedTotal < m.total ? recomputedTotal : 0);
}

BackendInfo queryBackendsOrReason() {
  try {
    return query_backends();
  } catch (...) {
    BackendInfo none;
    none.cuda_status = "the GPU query failed";
    return none;
  }
}

}  // namespace hearth::ui
