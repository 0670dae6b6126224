/* The GPU memory estimate in the desktop program (docs/gpu.md): the Models page shows it for the
 * selected model at the chosen context, against each GPU (or why there is none), and the fine-tune
 * wizard's estimate adds a GPU line when a GPU exists, or says runs use the CPU.
 *
 * Non-obvious choice: the expected figures come from the library functions called on the opened model
 * here (estimate_gpu_inference, estimate_gpu_training_memory), while the page builds its figures from
 * the facts its import worker gathered; fake GPU lists (setBackendInfo) reach the "fits" and "does not
 * fit" sentences on this GPU-less machine, and the real query_backends() answer is checked as well.
 */
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "app-context.h"
#include "fine-tune-wizard.h"
#include "gpu-memory-text.h"
#include "hearth/backend.h"
#include "hearth/gpu-estimate.h"
#include "hearth/model.h"
#include "hearth/trainer/estimate.h"
#include "model-inspect.h"
#include "model-library-page.h"
#include "settings.h"
#include "ui-test-util.h"

using namespace hearth;
using namespace hearth::ui;

namespace {

const QString TINY = QStringLiteral(HEARTH_TESTDATA "/models/llama-2-tiny-random.gguf");

BackendInfo fakeGpus() {
  BackendInfo b;
  b.cuda_compiled = true;
  b.cuda_status = "ok";
  GpuInfo big;
  big.index = 0;
  big.name = "Fake Big GPU";
  big.total_memory = 80ull << 30;
  GpuInfo small = big;
  small.index = 1;
  small.name = "Fake Small GPU";
  small.total_memory = 512ull << 20;  // below the 600 MiB allowance alone: nothing fits
  b.gpus = {big, small};
  return b;
}

QString num(std::uint64_t bytes) { return QString::number(double(bytes) / double(1ull << 30), 'f', 2); }

}  // namespace

class TestGpuEstimate : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void factsGiveTheLibraryEstimate();
  void libraryPageShowsEstimateForSelectedModel();
  void wizardAddsGpuLineOrSaysCpu();
  void trainingFitsByRecomputingAttention();
};

void TestGpuEstimate::initTestCase() {
  QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, QStringLiteral(HEARTH_TEST_TMP "/settings"));
  setApplicationIdentity();
  QVERIFY2(QFileInfo::exists(TINY), qPrintable(TINY));
}

// The page's estimate (facts from the worker + the context-dependent parts) equals the library's.
void TestGpuEstimate::factsGiveTheLibraryEstimate() {
  auto m = open_model(TINY.toStdString());
  QVERIFY(m.has_value());
  const ModelFacts f = describeModel(TINY);
  QVERIFY2(f.ok(), qPrintable(f.error));
  for (std::int64_t ctx : {0, 128, 4096, 1 << 20}) {
    const GpuMemoryEstimate want = estimate_gpu_inference(m->desc(), ctx);
    const GpuMemoryEstimate got = gpuEstimate(f, ctx);
    QCOMPARE(got.weights, want.weights);
    QCOMPARE(got.kv_cache, want.kv_cache);
    QCOMPARE(got.activations, want.activations);
    QCOMPARE(got.dequant, want.dequant);
    QCOMPARE(got.overhead, want.overhead);
    QCOMPARE(got.total, want.total);
  }
}

void TestGpuEstimate::libraryPageShowsEstimateForSelectedModel() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  AppContext ctx(dir.filePath(QStringLiteral("p.hearth")));
  QVERIFY2(ctx.project(), qPrintable(ctx.lastError()));
  ModelLibraryPage page(ctx);
  page.resize(1100, 700);
  page.setFitContext(4096);
  QSignalSpy spy(&page, &ModelLibraryPage::importFinished);
  page.importPath(TINY);
  QVERIFY(spy.wait(60000));
  QVERIFY(spy.takeFirst().at(0).toBool());
  QVERIFY(page.currentModelId() != 0);

  auto m = open_model(TINY.toStdString());
  QVERIFY(m.has_value());
  const GpuMemoryEstimate e = estimate_gpu_inference(m->desc(), 4096);

  // This machine's own answer (worker): the estimate, then no GPU and why (or the GPUs of a GPU machine).
  QTRY_VERIFY_WITH_TIMEOUT(!page.gpuFitText().isEmpty() && !page.gpuFitText().contains(QStringLiteral("looking")),
                           30000);
  const BackendInfo real = query_backends();
  QString text = page.gpuFitText();
  QVERIFY2(text.startsWith(QStringLiteral("GPU memory at %1 context: %2 GiB")
                               .arg(QLocale().toString(4096), num(e.total))),
           qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("KV cache %1").arg(num(e.kv_cache))), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("CUDA allowance %1 GiB").arg(num(600ull << 20))), qPrintable(text));
  if (real.gpus.empty())
    QVERIFY2(text.endsWith(QStringLiteral("no GPU found: %1").arg(QString::fromStdString(real.cuda_status))),
             qPrintable(text));
  else
    QVERIFY2(text.contains(QString::fromStdString(real.gpus[0].name)), qPrintable(text));

  // Fake GPUs: fits on the big one, not on the small one; a new context updates the sentence.
  page.setBackendInfo(fakeGpus());
  text = page.gpuFitText();
  QVERIFY2(text.contains(QStringLiteral("fits on Fake Big GPU (80.00 GiB)")), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("does not fit on Fake Small GPU (0.50 GiB)")), qPrintable(text));
  page.setFitContext(1 << 20);
  const GpuMemoryEstimate big = estimate_gpu_inference(m->desc(), 1 << 20);
  QVERIFY(big.kv_cache > e.kv_cache);
  text = page.gpuFitText();
  QVERIFY2(text.startsWith(QStringLiteral("GPU memory at %1 context: %2 GiB")
                               .arg(QLocale().toString(1 << 20), num(big.total))),
           qPrintable(text));
  // A fake GPU smaller than that need: does not fit.
  BackendInfo tight = fakeGpus();
  tight.gpus.resize(1);
  tight.gpus[0].total_memory = big.total - 1;
  page.setBackendInfo(tight);
  QVERIFY2(page.gpuFitText().contains(QStringLiteral("does not fit on Fake Big GPU")), qPrintable(page.gpuFitText()));
}

void TestGpuEstimate::wizardAddsGpuLineOrSaysCpu() {
  QTemporaryDir dir;
  QVERIFY(dir.isValid());
  AppContext ctx(dir.filePath(QStringLiteral("w.hearth")));
  QVERIFY2(ctx.project(), qPrintable(ctx.lastError()));
  const store::Id version = hearth::test::importGguf(*ctx.project(), TINY.toStdString(), "tiny");
  auto m = open_model(TINY.toStdString());
  QVERIFY(m.has_value());
  FineTuneWizard w(ctx);
  w.setModel(version, TINY, QStringLiteral("tiny"), m->desc());

  BackendInfo none;
  none.cuda_status = "no CUDA device found";
  w.setBackendInfo(none);
  w.settingsPage()->updateEstimate();
  QString text = w.settingsPage()->estimateText();
  QVERIFY2(text.contains(QStringLiteral("No GPU found (no CUDA device found): runs use the CPU.")), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("<b>Memory</b>")), qPrintable(text));  // the CPU estimate stays

  w.setBackendInfo(fakeGpus());
  w.settingsPage()->updateEstimate();
  text = w.settingsPage()->estimateText();
  const train::TrainConfig c = w.buildConfig();
  const auto& d = m->desc();
  const train::MemoryEstimate g = train::estimate_gpu_training_memory(d.params, d.n_params, d.file_size, c);
  QVERIFY2(text.contains(QStringLiteral("GPU memory ≈ %1 GiB").arg(num(g.total)).toHtmlEscaped()), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("fits on Fake Big GPU (80.00 GiB)")), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("does not fit on Fake Small GPU (0.50 GiB)")), qPrintable(text));
  QVERIFY(!text.contains(QStringLiteral("runs use the CPU")));
}

// A GPU between the run's total and its total with attention recomputed is told the run fits that way
// (the GPU trainer switches to recomputing by itself); one below both does not fit; one above both fits.
void TestGpuEstimate::trainingFitsByRecomputingAttention() {
  train::MemoryEstimate m;
  m.total = 2ull << 30;
  BackendInfo b = fakeGpus();  // 80 GiB and 0.5 GiB
  GpuInfo mid = b.gpus[0];
  mid.index = 2;
  mid.name = "Fake Mid GPU";
  mid.total_memory = 3ull << 29;  // 1.5 GiB
  b.gpus.push_back(mid);
  const QString text = gpuTrainingText(m, train::Method::full, b, 1ull << 30);
  QVERIFY2(text.contains(QStringLiteral("fits on Fake Big GPU (80.00 GiB);")), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("does not fit on Fake Small GPU (0.50 GiB)")), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("fits on Fake Mid GPU (1.50 GiB) by recomputing attention")), qPrintable(text));
  // Without the smaller total (or with one that is not smaller) the mid GPU does not fit.
  QVERIFY2(gpuTrainingText(m, train::Method::full, b).contains(QStringLiteral("does not fit on Fake Mid GPU")),
           qPrintable(text));
  QVERIFY(gpuTrainingText(m, train::Method::full, b, m.total).contains(QStringLiteral("does not fit on Fake Mid GPU")));
  // The real estimate: recomputing keeps one layer's probabilities, so it is smaller for a multi-layer run.
  auto model = open_model(TINY.toStdString());
  QVERIFY(model);
  train::TrainConfig c;
  c.method = train::Method::full;
  c.data.max_length = 256;
  const auto& d = model->desc();
  const auto keep = train::estimate_gpu_training_memory(d.params, d.n_params, d.file_size, c);
  c.training.recompute = true;
  const auto least = train::estimate_gpu_training_memory(d.params, d.n_params, d.file_size, c);
  QCOMPARE(d.params.n_layer > 1, least.total < keep.total);
  QVERIFY(least.total <= keep.total);
}

QTEST_MAIN(TestGpuEstimate)
#include "tst_gpuestimate.moc"
