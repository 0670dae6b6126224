/* FineTuneWizard: the five pages that set up a fine-tuning run: (1) base model from the project's library,
 * (2) dataset with its detected format, a preview of the first examples as the model sees them (trained
 * tokens highlighted apart from masked ones), statistics and a token-length histogram, (3) method (LoRA or
 * full) with presets and target modules, (4) settings with a memory and time estimate, (5) review of the
 * run's YAML, "Save as preset…", Start. Each page says in words what is wrong and blocks Next until fixed.
 *
 * Non-obvious choices:
 * - The sequence length (data.max_length) is set on the dataset page, not the settings page, because
 *   the truncation count and the histogram depend on it; the settings page's estimate uses it.
 * - The dataset is loaded and tokenized with the chosen model's tokenizer and chat template on a
 *   QtConcurrent worker (hearth::train::load_dataset, the trainer's own code), so the preview shows the
 *   exact tokens and mask the run will train on; a newer load supersedes an older one (generation count).
 * - Malformed lines are listed with their numbers and block Next unless "Skip malformed lines" is ticked
 *   (which is data.skip_bad_lines in the run).
 * - A run whose memory estimate exceeds MemAvailable blocks Next until "Start anyway" is ticked.
 *   The GPU estimate (docs/gpu.md) is one more line, shown when a GPU exists; it blocks nothing.
 * - "Train on" (CPU / GPU (CUDA) / Automatic: training.device) and the GPU precision (BF16 mixed / F32:
 *   training.precision) are written into the config whatever the machine has now: the run decides when
 *   it starts, and a GPU that cannot serve then trains on the CPU and says why (the dashboard shows it).
 * - On Start the YAML is written to <project folder>/runs/<name>-<time>.yaml; configPath() names it and
 *   the fine-tune page queues it (RunQueue runs it in a child hearth-cli).
 *
 * Threads: GUI thread; the dataset load and the gemm-rate probe (estimate.h) run on the Qt pool.
 */
#pragma once

#include <QFutureWatcher>
#include <QWizard>
#include <QWizardPage>
#include <memory>
#include <optional>
#include <vector>

#include "hearth/backend.h"
#include "hearth/model.h"
#include "hearth/store/records.h"
#include "hearth/trainer/config.h"
#include "hearth/trainer/data.h"
#include "hearth/trainer/estimate.h"

class QButtonGroup;
class QCheckBox;
class QComboBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QRadioButton;
class QSpinBox;
class QTextEdit;

namespace hearth::ui {

class AppContext;
class FineTuneWizard;

// What the dataset worker hands back.
struct DatasetLoad {
  int generation = 0;
  QString error;  // empty on success
  std::shared_ptr<train::Dataset> dataset;
  std::vector<std::vector<train::PreviewToken>> preview;
};

class WizardModelPage : public QWizardPage {
  Q_OBJECT
 public:
  WizardModelPage(AppContext& ctx, FineTuneWizard& wizard);
  void initializePage() override;
  bool isComplete() const override;
  QListWidget* list() const { return m_list; }
  QString message() const;

 private:
  void select();
  AppContext& m_ctx;
  FineTuneWizard& m_wizard;
  QListWidget* m_list;
  QLabel* m_info;
  QLabel* m_message;
  bool m_ok = false;
};

class WizardDataPage : public QWizardPage {
  Q_OBJECT
 public:
  explicit WizardDataPage(FineTuneWizard& wizard);
  bool isComplete() const override;
  void initializePage() override;
  void setFile(const QString& path);  // starts loading
  bool loading() const { return m_loading; }
  QString message() const;
  QTextEdit* preview() const { return m_preview; }
  int64_t maxLength() const;
  double validationShare() const;
  bool skipBadLines() const;
  const train::Dataset* dataset() const { return m_result.dataset.get(); }

 signals:
  void loaded();

 private:
  void reload();
  void showResult();
  FineTuneWizard& m_wizard;
  QLineEdit* m_file;
  QLabel* m_format;
  QSpinBox* m_maxLen;
  QDoubleSpinBox* m_valShare;
  QCheckBox* m_skipBad;
  QTextEdit* m_preview;
  QLabel* m_stats;
  QCustomPlot* m_hist;
  QPlainTextEdit* m_issues;
  QLabel* m_message;
  QFutureWatcher<DatasetLoad> m_watcher;
  int m_generation = 0;
  bool m_loading = false;
  DatasetLoad m_result;
};

class WizardMethodPage : public QWizardPage {
  Q_OBJECT
 public:
  explicit WizardMethodPage(FineTuneWizard& wizard);
  bool isComplete() const override;
  QString message() const;
  bool isLora() const;
  void setLora(bool lora);
  void applyPreset(int index);  // 0 quick, 1 balanced, 2 thorough
  train::LoraSettings lora() const;
  std::vector<QCheckBox*> targetBoxes() const { return m_targets; }

 private:
  void update();
  FineTuneWizard& m_wizard;
  QRadioButton *m_loraRadio, *m_fullRadio;
  QComboBox* m_preset;
  QSpinBox* m_rank;
  QDoubleSpinBox* m_alpha;
  std::vector<QCheckBox*> m_targets;
  QLabel* m_message;
};

class WizardSettingsPage : public QWizardPage {
  Q_OBJECT
 public:
  explicit WizardSettingsPage(FineTuneWizard& wizard);
  void initializePage() override;
  bool isComplete() const override;
  QString message() const;
  QString estimateText() const;
  void fill(train::TrainConfig& c) const;  // training + eval keys
  // Set by the method page's presets.
  void setLearningRate(double lr);
  void setEpochs(double epochs);

  QLineEdit* lr() const { return m_lr; }
  QSpinBox* batch() const { return m_batch; }
  QSpinBox* steps() const { return m_steps; }
  QCheckBox* startAnyway() const { return m_anyway; }
  QComboBox* trainOn() const { return m_trainOn; }        // data: "cpu", "cuda", "auto"
  QComboBox* precision() const { return m_precision; }    // data: "bf16", "f32"
  void updateEstimate();

 private:
  FineTuneWizard& m_wizard;
  QLineEdit* m_lr;
  QDoubleSpinBox* m_epochs;
  QSpinBox *m_steps, *m_batch, *m_accum, *m_warmup, *m_evalEvery, *m_seed;
  QComboBox* m_schedule;
  QComboBox* m_trainOn;
  QComboBox* m_precision;
  QLineEdit* m_prompt;
  QCheckBox* m_recompute;
  QCheckBox* m_anyway;
  QLabel* m_estimate;
  QLabel* m_message;
  bool m_tooBig = false;
};

class WizardReviewPage : public QWizardPage {
  Q_OBJECT
 public:
  explicit WizardReviewPage(FineTuneWizard& wizard);
  void initializePage() override;
  bool isComplete() const override;
  QString yaml() const;
  QString message() const;
  QLineEdit* name() const { return m_name; }

 private:
  void rebuild();
  FineTuneWizard& m_wizard;
  QLineEdit* m_name;
  QPlainTextEdit* m_yaml;
  QLabel* m_message;
  bool m_ok = false;
};

class FineTuneWizard : public QWizard {
  Q_OBJECT
 public:
  enum PageId { ModelPage, DataPage, MethodPage, SettingsPage, ReviewPage };

  explicit FineTuneWizard(AppContext& ctx, QWidget* parent = nullptr);
  ~FineTuneWizard() override;

  WizardModelPage* modelPage() const { return m_modelPage; }
  WizardDataPage* dataPage() const { return m_dataPage; }
  WizardMethodPage* methodPage() const { return m_methodPage; }
  WizardSettingsPage* settingsPage() const { return m_settingsPage; }
  WizardReviewPage* reviewPage() const { return m_reviewPage; }

  // The chosen base model (set by the model page).
  std::optional<store::Id> baseVersionId() const { return m_versionId; }
  QString modelPath() const { return m_modelPath; }
  QString modelLabel() const { return m_modelLabel; }
  const std::optional<ModelDesc>& modelDesc() const { return m_desc; }
  void setModel(std::optional<store::Id> versionId, const QString& path, const QString& label,
                std::optional<ModelDesc> desc);

  // The run as the pages say now.
  train::TrainConfig buildConfig() const;
  QString runName() const;
  // Writes the YAML (config_to_yaml) to `path`. Returns false with *error set on failure.
  bool savePreset(const QString& path, QString* error = nullptr) const;
  // Where Start wrote the YAML (empty before).
  QString configPath() const { return m_configPath; }

  // Memory: MemAvailable unless overridden (tests use the override to reach the warning).
  uint64_t availableMemory() const;
  void setAvailableMemory(uint64_t bytes) { m_memOverride = bytes; }
  double gemmFlops() const { return m_gemmFlops; }  // 0 until measured
  // The GPUs (for the GPU estimate line): queried on a worker at start, nullopt until known; tests give
  // their own (which then wins over the worker's answer).
  const std::optional<BackendInfo>& backends() const { return m_backends; }
  void setBackendInfo(const BackendInfo& info);

  void accept() override;

 signals:
  void modelChanged();
  void estimateInputsChanged();

 private:
  AppContext& m_ctx;
  WizardModelPage* m_modelPage = nullptr;
  WizardDataPage* m_dataPage = nullptr;
  WizardMethodPage* m_methodPage = nullptr;
  WizardSettingsPage* m_settingsPage = nullptr;
  WizardReviewPage* m_reviewPage = nullptr;
  std::optional<store::Id> m_versionId;
  QString m_modelPath, m_modelLabel;
  std::optional<ModelDesc> m_desc;
  QString m_configPath;
  uint64_t m_memOverride = 0;
  double m_gemmFlops = 0;
  QFutureWatcher<double> m_gemmWatcher;
  std::optional<BackendInfo> m_backends;
  bool m_backendsGiven = false;
  QFutureWatcher<BackendInfo> m_backendWatcher;
};

}  // namespace hearth::ui
