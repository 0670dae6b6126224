/* FineTuneWizard: see fine-tune-wizard.h.
 *
 * Non-obvious choice: the preview shows each token's piece as the tokenizer stores it, with the
 * SentencePiece space marker shown as a space and byte tokens <0x0A> as line breaks; trained tokens get
 * the palette's highlight colour as background, masked ones the placeholder text colour, so the split
 * reads in any theme.
 */
#include "fine-tune-wizard.h"

#include <QButtonGroup>
#include <QCheckBox>
#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRadioButton>
#include <QSpinBox>
#include <QTextEdit>
#include <QTimer>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <cmath>
#include <qcustomplot.h>

#include "app-context.h"
#include "gpu-memory-text.h"
#include "hearth/chat-template.h"
#include "hearth/tokenizer.h"

namespace hearth::ui {
namespace {

namespace fs = std::filesystem;

QLabel* makeMessage(QWidget* parent) {
  auto* l = new QLabel(parent);
  l->setObjectName(QStringLiteral("pageMessage"));
  l->setWordWrap(true);
  l->setTextInteractionFlags(Qt::TextSelectableByMouse);
  QPalette p = l->palette();
  p.setColor(QPalette::WindowText, QColor(0xc0, 0x30, 0x20));
  l->setPalette(p);
  return l;
}

QString bytes(uint64_t b) {
  const double v = double(b);
  if (v >= 1024.0 * 1024 * 1024) return QStringLiteral("%1 GiB").arg(v / (1024.0 * 1024 * 1024), 0, 'f', 2);
  if (v >= 1024.0 * 1024) return QStringLiteral("%1 MiB").arg(v / (1024.0 * 1024), 0, 'f', 1);
  return QStringLiteral("%1 KiB").arg(v / 1024.0, 0, 'f', 1);
}

QString qs(const std::string& s) { return QString::fromStdString(s); }

DatasetLoad loadDataset(int generation, QString modelPath, train::DataConfig config, uint64_t seed) {
  DatasetLoad out;
  out.generation = generation;
  auto fmt = train::detect_format(config.train);
  if (!fmt) {
    out.error = qs(fmt.error().to_string());
    return out;
  }
  const fs::path mp = modelPath.toStdString();
  auto tok = load_tokenizer(mp);
  if (!tok) {
    out.error = QObject::tr("Cannot load the model's tokenizer: %1").arg(qs(tok.error().to_string()));
    return out;
  }
  std::optional<ChatTemplate> tmpl;
  if (*fmt != train::DataFormat::text) {
    std::string src = train::fallback_chat_template();
    if (auto m = open_model(mp); m && m->desc().tokenizer.chat_template) src = *m->desc().tokenizer.chat_template;
    auto t = ChatTemplate::parse(src);
    if (!t) t = ChatTemplate::parse(train::fallback_chat_template());
    if (t) tmpl = std::move(*t);
  }
  auto ds = train::load_dataset(config, *tok, tmpl ? &*tmpl : nullptr, seed);
  if (!ds) {
    out.error = qs(ds.error().to_string());
    return out;
  }
  out.dataset = std::make_shared<train::Dataset>(std::move(*ds));
  out.preview = train::preview_examples(*out.dataset, *tok, 3);
  return out;
}

QString pieceText(const std::string& piece) {
  QString t = qs(piece);
  if (t == QLatin1String("<0x0A>")) return QStringLiteral("\n");
  t.replace(QChar(0x2581), QLatin1Char(' '));
  t.replace(QChar(0x0120), QLatin1Char(' '));  // GPT-2 byte-level space
  t.replace(QChar(0x010A), QLatin1Char('\n'));
  return t;
}

}  // namespace

// ---------------------------------------------------------------- (1) model

WizardModelPage::WizardModelPage(AppContext& ctx, FineTuneWizard& wizard) : m_ctx(ctx), m_wizard(wizard) {
  setTitle(tr("Base model"));
  setSubTitle(tr("The model to fine-tune, from this project's library (quantized GGUF files are fine: LoRA "
                 "keeps the base weights in their stored type)."));
  auto* l = new QVBoxLayout(this);
  m_list = new QListWidget(this);
  m_list->setObjectName(QStringLiteral("modelList"));
  m_info = new QLabel(this);
  m_info->setObjectName(QStringLiteral("modelInfo"));
  m_info->setWordWrap(true);
  m_message = makeMessage(this);
  l->addWidget(m_list, 1);
  l->addWidget(m_info);
  l->addWidget(m_message);
  // Selection, not the current row: a list view makes its first row current when it gets focus.
  connect(m_list, &QListWidget::itemSelectionChanged, this, &WizardModelPage::select);
}

void WizardModelPage::initializePage() {
  if (m_list->count() > 0) return;
  store::Project* p = m_ctx.project();
  if (p) {
    if (auto models = p->models()) {
      for (const auto& m : *models) {
        auto versions = p->modelVersions(m.id);
        if (!versions) continue;
        for (const auto& v : *versions) {
          if (v.kind == "adapter") continue;  // an adapter is not a base to fine-tune
          const QString path = qs(v.path.empty() ? m.path : v.path);
          auto* item = new QListWidgetItem(tr("%1 · %2 (%3)").arg(qs(m.name), qs(v.label), qs(v.kind)), m_list);
          item->setData(Qt::UserRole, QVariant::fromValue<qlonglong>(v.id));
          item->setData(Qt::UserRole + 1, path);
          item->setData(Qt::UserRole + 2, qs(m.name));
          item->setToolTip(path);
        }
      }
    }
  }
  m_list->clearSelection();  // the user chooses; nothing is picked for them
  select();
}

void WizardModelPage::select() {
  m_ok = false;
  const QList<QListWidgetItem*> selected = m_list->selectedItems();
  QListWidgetItem* item = selected.isEmpty() ? nullptr : selected.front();
  if (m_list->count() == 0) {
    m_message->setText(tr("The library has no model yet: import one on the Models page first."));
  } else if (!item) {
    m_message->setText(tr("Choose the base model to fine-tune."));
  } else {
    const QString path = item->data(Qt::UserRole + 1).toString();
    auto m = open_model(path.toStdString());
    if (!m) {
      m_message->setText(tr("Cannot open %1: %2").arg(path, qs(m.error().to_string())));
      m_info->clear();
      m_wizard.setModel(std::nullopt, {}, {}, std::nullopt);
    } else {
      const auto& d = m->desc();
      m_info->setText(tr("%1: %2 layers, hidden size %3, %4 parameters, %5 on disk")
                          .arg(path)
                          .arg(d.params.n_layer)
                          .arg(d.params.n_embd)
                          .arg(QLocale().toString(qlonglong(d.n_params)))
                          .arg(bytes(d.file_size)));
      m_message->clear();
      m_ok = true;
      m_wizard.setModel(item->data(Qt::UserRole).toLongLong(), path, item->data(Qt::UserRole + 2).toString(), d);
    }
  }
  emit completeChanged();
}

bool WizardModelPage::isComplete() const { return m_ok; }
QString WizardModelPage::message() const { return m_message->text(); }

// ---------------------------------------------------------------- (2) data

WizardDataPage::WizardDataPage(FineTuneWizard& wizard) : m_wizard(wizard) {
  setTitle(tr("Dataset"));
  setSubTitle(tr("A JSONL file (alpaca, ShareGPT or OpenAI messages) or plain text. The preview shows the "
                 "first examples as the model will see them: highlighted tokens are trained, the others "
                 "are context only."));
  auto* l = new QVBoxLayout(this);
  auto* row = new QHBoxLayout;
  m_file = new QLineEdit(this);
  m_file->setObjectName(QStringLiteral("datasetFile"));
  m_file->setPlaceholderText(tr("Dataset file…"));
  auto* browse = new QPushButton(tr("Browse…"), this);
  row->addWidget(m_file, 1);
  row->addWidget(browse);
  l->addLayout(row);
  auto* opts = new QHBoxLayout;
  m_format = new QLabel(this);
  m_format->setObjectName(QStringLiteral("datasetFormat"));
  m_maxLen = new QSpinBox(this);
  m_maxLen->setObjectName(QStringLiteral("maxLength"));
  m_maxLen->setRange(16, 131072);
  m_maxLen->setValue(256);
  m_valShare = new QDoubleSpinBox(this);
  m_valShare->setObjectName(QStringLiteral("validationShare"));
  m_valShare->setRange(0.0, 0.5);
  m_valShare->setSingleStep(0.05);
  m_valShare->setValue(0.1);
  m_skipBad = new QCheckBox(tr("Skip malformed lines"), this);
  m_skipBad->setObjectName(QStringLiteral("skipBadLines"));
  opts->addWidget(m_format, 1);
  opts->addWidget(new QLabel(tr("Sequence length:"), this));
  opts->addWidget(m_maxLen);
  opts->addWidget(new QLabel(tr("Validation share:"), this));
  opts->addWidget(m_valShare);
  opts->addWidget(m_skipBad);
  l->addLayout(opts);
  auto* mid = new QHBoxLayout;
  m_preview = new QTextEdit(this);
  m_preview->setObjectName(QStringLiteral("datasetPreview"));
  m_preview->setReadOnly(true);
  auto* right = new QVBoxLayout;
  m_stats = new QLabel(this);
  m_stats->setObjectName(QStringLiteral("datasetStats"));
  m_stats->setWordWrap(true);
  m_hist = new QCustomPlot(this);
  m_hist->setObjectName(QStringLiteral("lengthHistogram"));
  m_hist->setMinimumSize(240, 140);
  m_hist->xAxis->setLabel(tr("tokens per example"));
  m_hist->yAxis->setLabel(tr("examples"));
  right->addWidget(m_stats);
  right->addWidget(m_hist, 1);
  mid->addWidget(m_preview, 3);
  mid->addLayout(right, 2);
  l->addLayout(mid, 1);
  m_issues = new QPlainTextEdit(this);
  m_issues->setObjectName(QStringLiteral("datasetIssues"));
  m_issues->setReadOnly(true);
  m_issues->setMaximumHeight(80);
  m_issues->hide();
  l->addWidget(m_issues);
  m_message = makeMessage(this);
  l->addWidget(m_message);

  auto* debounce = new QTimer(this);
  debounce->setSingleShot(true);
  debounce->setInterval(300);
  connect(debounce, &QTimer::timeout, this, &WizardDataPage::reload);
  connect(m_file, &QLineEdit::textChanged, debounce, qOverload<>(&QTimer::start));
  connect(m_maxLen, &QSpinBox::valueChanged, debounce, qOverload<>(&QTimer::start));
  connect(m_valShare, &QDoubleSpinBox::valueChanged, debounce, qOverload<>(&QTimer::start));
  connect(m_skipBad, &QCheckBox::toggled, this, [this] {
    showResult();
    emit m_wizard.estimateInputsChanged();
  });
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Dataset"), QFileInfo(m_file->text()).absolutePath(),
                                                   tr("Datasets (*.jsonl *.json *.txt *.md);;All files (*)"));
    if (!f.isEmpty()) setFile(f);
  });
  connect(&m_watcher, &QFutureWatcher<DatasetLoad>::finished, this, [this] {
    DatasetLoad r = m_watcher.result();
    if (r.generation != m_generation) return;  // superseded
    m_loading = false;
    m_result = std::move(r);
    showResult();
    emit m_wizard.estimateInputsChanged();
    emit loaded();
  });
  connect(&m_wizard, &FineTuneWizard::modelChanged, this, [this] {
    if (!m_file->text().isEmpty()) reload();
  });
  m_message->setText(tr("Choose a dataset file."));
}

void WizardDataPage::initializePage() {
  if (m_result.dataset == nullptr && !m_loading && !m_file->text().isEmpty()) reload();
}

void WizardDataPage::setFile(const QString& path) {
  m_file->setText(path);
  reload();
}

void WizardDataPage::reload() {
  ++m_generation;
  m_result = DatasetLoad{};
  m_preview->clear();
  m_stats->clear();
  m_issues->hide();
  const QString path = m_file->text().trimmed();
  if (path.isEmpty()) {
    m_loading = false;
    m_message->setText(tr("Choose a dataset file."));
    emit completeChanged();
    return;
  }
  if (!QFileInfo(path).isFile()) {
    m_loading = false;
    m_message->setText(tr("%1 does not exist or is not a file.").arg(path));
    emit completeChanged();
    return;
  }
  if (m_wizard.modelPath().isEmpty()) {
    m_loading = false;
    m_message->setText(tr("Choose the base model first: the dataset is tokenized with its tokenizer."));
    emit completeChanged();
    return;
  }
  m_loading = true;
  m_message->setText(tr("Reading and tokenizing %1…").arg(QFileInfo(path).fileName()));
  emit completeChanged();
  train::DataConfig dc;
  dc.train = fs::absolute(path.toStdString());
  dc.max_length = m_maxLen->value();
  dc.validation_split = m_valShare->value();
  dc.skip_bad_lines = true;  // list every bad line; the checkbox decides whether that blocks
  m_watcher.setFuture(QtConcurrent::run(loadDataset, m_generation, m_wizard.modelPath(), dc, uint64_t(42)));
}

void WizardDataPage::showResult() {
  m_hist->clearPlottables();
  if (!m_result.error.isEmpty() || !m_result.dataset) {
    if (!m_loading && !m_result.error.isEmpty()) m_message->setText(tr("This dataset cannot be used: %1").arg(m_result.error));
    m_format->clear();
    m_hist->replot();
    emit completeChanged();
    return;
  }
  const train::Dataset& d = *m_result.dataset;
  const auto& s = d.stats;
  m_format->setText(tr("Format: %1").arg(QLatin1String(train::data_format_name(d.format))));
  m_stats->setText(tr("%1 rows (%2 malformed), %3 training + %4 validation examples\n%5 tokens (%6 trained)\n"
                      "length %7…%8, mean %9, p90 %10\n%11 truncated at %12 tokens")
                       .arg(s.rows)
                       .arg(s.bad_rows)
                       .arg(s.train_examples)
                       .arg(s.validation_examples)
                       .arg(s.tokens)
                       .arg(s.trained_tokens)
                       .arg(s.min_len)
                       .arg(s.max_len)
                       .arg(s.mean_len, 0, 'f', 1)
                       .arg(s.p90_len)
                       .arg(s.truncated)
                       .arg(maxLength()));
  // Histogram: 16 equal bins over [0, max_length].
  auto* bars = new QCPBars(m_hist->xAxis, m_hist->yAxis);
  const double width = double(maxLength()) / double(std::max<size_t>(1, s.histogram.size()));
  QVector<double> x, y;
  double top = 1;
  for (size_t i = 0; i < s.histogram.size(); ++i) {
    x << (double(i) + 0.5) * width;
    y << double(s.histogram[i]);
    top = std::max(top, double(s.histogram[i]));
  }
  bars->setWidth(width * 0.9);
  bars->setData(x, y);
  bars->setBrush(palette().color(QPalette::Highlight));
  m_hist->xAxis->setRange(0, double(maxLength()));
  m_hist->yAxis->setRange(0, top * 1.1);
  m_hist->replot();
  // Preview.
  const QColor trained = palette().color(QPalette::Highlight).lighter(160);
  const QColor masked = palette().color(QPalette::PlaceholderText);
  QString html = QStringLiteral("<div style='font-family:monospace; white-space:pre-wrap'>");
  for (size_t e = 0; e < m_result.preview.size(); ++e) {
    html += tr("<p><b>Example %1</b></p><p>").arg(e + 1);
    for (const auto& t : m_result.preview[e]) {
      QString text = pieceText(t.text).toHtmlEscaped();
      text.replace(QLatin1Char('\n'), QStringLiteral("↵<br>"));
      if (t.trained)
        html += QStringLiteral("<span style='background-color:%1'>%2</span>").arg(trained.name(), text);
      else
        html += QStringLiteral("<span style='color:%1'>%2</span>").arg(masked.name(), text);
    }
    html += QStringLiteral("</p>");
  }
  html += QStringLiteral("</div>");
  m_preview->setHtml(html);
  // Malformed lines.
  QStringList lines;
  int bad = 0;
  for (const auto& i : d.issues) {
    if (i.line > 0) ++bad;
    lines << (i.line > 0 ? tr("line %1: %2").arg(i.line).arg(qs(i.message)) : qs(i.message));
  }
  m_issues->setPlainText(lines.join(QLatin1Char('\n')));
  m_issues->setVisible(!lines.isEmpty());
  if (d.train.empty())
    m_message->setText(tr("No training example left (all rows malformed, or the validation share takes them all)."));
  else if (bad > 0 && !m_skipBad->isChecked())
    m_message->setText(tr("%1 malformed line(s) (listed above, first on line %2). Fix the file, or tick "
                          "\"Skip malformed lines\" to train without them.")
                           .arg(s.bad_rows)
                           .arg(d.issues.front().line > 0 ? d.issues.front().line : (d.issues.size() > 1 ? d.issues[1].line : 0)));
  else
    m_message->clear();
  emit completeChanged();
}

bool WizardDataPage::isComplete() const {
  if (m_loading || !m_result.dataset || m_result.dataset->train.empty()) return false;
  return m_result.dataset->stats.bad_rows == 0 || m_skipBad->isChecked();
}

QString WizardDataPage::message() const { return m_message->text(); }
int64_t WizardDataPage::maxLength() const { return m_maxLen->value(); }
double WizardDataPage::validationShare() const { return m_valShare->value(); }
bool WizardDataPage::skipBadLines() const { return m_skipBad->isChecked(); }

// ---------------------------------------------------------------- (3) method

WizardMethodPage::WizardMethodPage(FineTuneWizard& wizard) : m_wizard(wizard) {
  setTitle(tr("Method"));
  setSubTitle(tr("LoRA trains small adapter matrices next to frozen weights (little memory, fast); full "
                 "fine-tuning trains every weight (F32 copy, gradients and AdamW moments: ~16 bytes per parameter)."));
  auto* l = new QVBoxLayout(this);
  m_loraRadio = new QRadioButton(tr("LoRA adapter"), this);
  m_loraRadio->setObjectName(QStringLiteral("methodLora"));
  m_fullRadio = new QRadioButton(tr("Full fine-tuning"), this);
  m_fullRadio->setObjectName(QStringLiteral("methodFull"));
  m_loraRadio->setChecked(true);
  l->addWidget(m_loraRadio);
  l->addWidget(m_fullRadio);
  auto* form = new QFormLayout;
  m_preset = new QComboBox(this);
  m_preset->setObjectName(QStringLiteral("preset"));
  m_preset->addItems({tr("Quick (rank 4, lr 3e-4, 1 epoch)"), tr("Balanced (rank 8, lr 2e-4, 2 epochs)"),
                      tr("Thorough (rank 16, lr 1e-4, 3 epochs)")});
  m_rank = new QSpinBox(this);
  m_rank->setObjectName(QStringLiteral("loraRank"));
  m_rank->setRange(0, 1024);
  m_rank->setValue(8);
  m_alpha = new QDoubleSpinBox(this);
  m_alpha->setObjectName(QStringLiteral("loraAlpha"));
  m_alpha->setRange(0, 4096);
  m_alpha->setValue(16);
  form->addRow(tr("Preset:"), m_preset);
  form->addRow(tr("LoRA rank:"), m_rank);
  form->addRow(tr("LoRA alpha:"), m_alpha);
  l->addLayout(form);
  auto* box = new QGroupBox(tr("Target modules"), this);
  auto* tl = new QHBoxLayout(box);
  for (const char* t : {"q", "k", "v", "o", "gate", "up", "down"}) {
    auto* c = new QCheckBox(QLatin1String(t), box);
    c->setObjectName(QStringLiteral("target_%1").arg(QLatin1String(t)));
    c->setChecked(true);
    tl->addWidget(c);
    m_targets.push_back(c);
    connect(c, &QCheckBox::toggled, this, &WizardMethodPage::update);
  }
  l->addWidget(box);
  l->addStretch(1);
  m_message = makeMessage(this);
  l->addWidget(m_message);
  connect(m_loraRadio, &QRadioButton::toggled, this, &WizardMethodPage::update);
  connect(m_rank, &QSpinBox::valueChanged, this, &WizardMethodPage::update);
  connect(m_preset, &QComboBox::activated, this, &WizardMethodPage::applyPreset);
  m_preset->setCurrentIndex(1);
  update();
}

void WizardMethodPage::applyPreset(int index) {
  if (!m_wizard.settingsPage()) return;
  static const int ranks[] = {4, 8, 16};
  static const double lrs[] = {3e-4, 2e-4, 1e-4};
  static const double epochs[] = {1, 2, 3};
  index = std::clamp(index, 0, 2);
  m_preset->setCurrentIndex(index);
  m_rank->setValue(ranks[index]);
  m_alpha->setValue(2.0 * ranks[index]);
  // Full fine-tuning moves every weight: a tenth of the LoRA learning rate.
  m_wizard.settingsPage()->setLearningRate(isLora() ? lrs[index] : lrs[index] / 10.0);
  m_wizard.settingsPage()->setEpochs(epochs[index]);
}

void WizardMethodPage::update() {
  const bool lora = isLora();
  m_rank->setEnabled(lora);
  m_alpha->setEnabled(lora);
  for (auto* c : m_targets) c->setEnabled(lora);
  QString msg;
  if (lora) {
    int n = 0;
    for (auto* c : m_targets) n += c->isChecked() ? 1 : 0;
    if (n == 0) msg = tr("Tick at least one target module: LoRA adds its adapters to those matrices.");
    else if (m_rank->value() < 1) msg = tr("The LoRA rank must be at least 1.");
  }
  m_message->setText(msg);
  emit completeChanged();
  emit m_wizard.estimateInputsChanged();
}

bool WizardMethodPage::isComplete() const { return m_message->text().isEmpty(); }
QString WizardMethodPage::message() const { return m_message->text(); }
bool WizardMethodPage::isLora() const { return m_loraRadio->isChecked(); }
void WizardMethodPage::setLora(bool lora) { (lora ? m_loraRadio : m_fullRadio)->setChecked(true); }

train::LoraSettings WizardMethodPage::lora() const {
  train::LoraSettings s;
  s.rank = m_rank->value();
  s.alpha = float(m_alpha->value());
  s.targets.clear();
  for (auto* c : m_targets)
    if (c->isChecked()) s.targets.push_back(c->text().toStdString());
  return s;
}

// ---------------------------------------------------------------- (4) settings

WizardSettingsPage::WizardSettingsPage(FineTuneWizard& wizard) : m_wizard(wizard) {
  setTitle(tr("Training settings"));
  setSubTitle(tr("The estimate below uses this machine's measured matrix-product speed and its available memory."));
  auto* form = new QFormLayout(this);
  m_lr = new QLineEdit(QStringLiteral("2e-4"), this);
  m_lr->setObjectName(QStringLiteral("learningRate"));
  m_epochs = new QDoubleSpinBox(this);
  m_epochs->setObjectName(QStringLiteral("epochs"));
  m_epochs->setRange(0, 1000);
  m_epochs->setValue(2);
  m_steps = new QSpinBox(this);
  m_steps->setObjectName(QStringLiteral("steps"));
  m_steps->setRange(0, 100000000);
  m_steps->setSpecialValueText(tr("from epochs"));
  m_batch = new QSpinBox(this);
  m_batch->setObjectName(QStringLiteral("batchSize"));
  m_batch->setRange(0, 4096);
  m_batch->setValue(4);
  m_accum = new QSpinBox(this);
  m_accum->setObjectName(QStringLiteral("gradAccum"));
  m_accum->setRange(0, 4096);
  m_accum->setValue(1);
  m_schedule = new QComboBox(this);
  m_schedule->setObjectName(QStringLiteral("schedule"));
  m_schedule->addItems({QStringLiteral("cosine"), QStringLiteral("linear"), QStringLiteral("constant")});
  m_warmup = new QSpinBox(this);
  m_warmup->setObjectName(QStringLiteral("warmupSteps"));
  m_warmup->setRange(0, 1000000);
  m_evalEvery = new QSpinBox(this);
  m_evalEvery->setObjectName(QStringLiteral("evalEvery"));
  m_evalEvery->setRange(0, 1000000);
  m_evalEvery->setSpecialValueText(tr("at the end only"));
  m_evalEvery->setValue(50);
  m_seed = new QSpinBox(this);
  m_seed->setObjectName(QStringLiteral("seed"));
  m_seed->setRange(0, 2147483647);
  m_seed->setValue(42);
  m_prompt = new QLineEdit(this);
  m_prompt->setObjectName(QStringLiteral("samplePrompt"));
  m_prompt->setPlaceholderText(tr("A prompt to generate from at each evaluation (optional)"));
  m_recompute = new QCheckBox(tr("Recompute activations in backward (less memory, ~30% slower)"), this);
  m_recompute->setObjectName(QStringLiteral("recompute"));
  m_trainOn = new QComboBox(this);
  m_trainOn->setObjectName(QStringLiteral("trainOnPicker"));
  m_trainOn->setToolTip(tr("Where the run's steps are computed (training.device). A GPU that cannot serve when "
                           "the run starts (none, too little memory) trains on the CPU instead, and the run's "
                           "dashboard says why."));
  m_trainOn->addItem(tr("CPU"), QStringLiteral("cpu"));
  m_trainOn->addItem(tr("GPU (CUDA)"), QStringLiteral("cuda"));
  m_trainOn->addItem(tr("Automatic (the GPU when one can serve)"), QStringLiteral("auto"));
  m_trainOn->setCurrentIndex(m_trainOn->findData(QStringLiteral("auto")));  // the config's default
  m_precision = new QComboBox(this);
  m_precision->setObjectName(QStringLiteral("precisionPicker"));
  m_precision->setToolTip(tr("GPU matrix products (training.precision): BF16 inputs with F32 accumulation and F32 "
                             "master weights, or F32 throughout (slower; the CPU's results within rounding)."));
  m_precision->addItem(tr("BF16 mixed precision"), QStringLiteral("bf16"));
  m_precision->addItem(tr("F32"), QStringLiteral("f32"));
  m_estimate = new QLabel(this);
  m_estimate->setObjectName(QStringLiteral("estimate"));
  m_estimate->setWordWrap(true);
  m_anyway = new QCheckBox(tr("Start anyway (the estimate exceeds the available memory)"), this);
  m_anyway->setObjectName(QStringLiteral("startAnyway"));
  m_anyway->hide();
  m_message = makeMessage(this);
  form->addRow(tr("Learning rate:"), m_lr);
  form->addRow(tr("Epochs:"), m_epochs);
  form->addRow(tr("Steps (overrides epochs):"), m_steps);
  form->addRow(tr("Batch size:"), m_batch);
  form->addRow(tr("Gradient accumulation:"), m_accum);
  form->addRow(tr("Schedule:"), m_schedule);
  form->addRow(tr("Warm-up steps:"), m_warmup);
  form->addRow(tr("Evaluate every (steps):"), m_evalEvery);
  form->addRow(tr("Seed:"), m_seed);
  form->addRow(tr("Sample prompt:"), m_prompt);
  form->addRow(tr("Train on:"), m_trainOn);
  form->addRow(tr("GPU precision:"), m_precision);
  form->addRow(m_recompute);
  form->addRow(m_estimate);
  form->addRow(m_anyway);
  form->addRow(m_message);
  auto changed = [this] { updateEstimate(); };
  connect(m_lr, &QLineEdit::textChanged, this, changed);
  connect(m_epochs, &QDoubleSpinBox::valueChanged, this, changed);
  for (QSpinBox* s : {m_steps, m_batch, m_accum, m_warmup, m_evalEvery, m_seed})
    connect(s, &QSpinBox::valueChanged, this, changed);
  connect(m_recompute, &QCheckBox::toggled, this, changed);
  // Precision means nothing on the CPU; it stays in the config (the default) either way.
  auto precisionFollows = [this] {
    m_precision->setEnabled(m_trainOn->currentData().toString() != QLatin1String("cpu"));
  };
  connect(m_trainOn, &QComboBox::currentIndexChanged, this, precisionFollows);
  connect(m_trainOn, &QComboBox::currentIndexChanged, this, changed);
  connect(m_precision, &QComboBox::currentIndexChanged, this, changed);
  connect(m_anyway, &QCheckBox::toggled, this, changed);
  connect(&m_wizard, &FineTuneWizard::estimateInputsChanged, this, changed);
}

void WizardSettingsPage::initializePage() { updateEstimate(); }

void WizardSettingsPage::setLearningRate(double lr) { m_lr->setText(QString::number(lr, 'g', 3)); }
void WizardSettingsPage::setEpochs(double epochs) { m_epochs->setValue(epochs); }

void WizardSettingsPage::fill(train::TrainConfig& c) const {
  c.training.lr = m_lr->text().trimmed().toDouble();
  c.training.epochs = m_epochs->value();
  c.training.steps = m_steps->value();
  c.training.batch_size = m_batch->value();
  c.training.grad_accum = m_accum->value();
  if (auto k = train::schedule_from_name(m_schedule->currentText().toStdString())) c.training.schedule = *k;
  c.training.warmup_steps = m_warmup->value();
  c.training.seed = uint64_t(m_seed->value());
  c.training.recompute = m_recompute->isChecked();
  c.training.device = m_trainOn->currentData().toString().toStdString();
  c.training.precision = m_precision->currentData().toString().toStdString();
  c.eval.every = m_evalEvery->value();
  c.eval.prompts.clear();
  if (!m_prompt->text().trimmed().isEmpty()) c.eval.prompts.push_back(m_prompt->text().trimmed().toStdString());
  c.eval.max_new_tokens = 24;
}

void WizardSettingsPage::updateEstimate() {
  QStringList problems;
  bool ok = false;
  const double lr = m_lr->text().trimmed().toDouble(&ok);
  if (!ok) problems << tr("The learning rate \"%1\" is not a number (write e.g. 2e-4).").arg(m_lr->text());
  else if (!(lr > 0) || lr >= 1) problems << tr("The learning rate must be above 0 and below 1 (typical: 1e-5 to 5e-4).");
  if (m_batch->value() < 1) problems << tr("The batch size must be at least 1.");
  if (m_accum->value() < 1) problems << tr("Gradient accumulation must be at least 1.");
  if (m_steps->value() == 0 && !(m_epochs->value() > 0)) problems << tr("Give a number of steps or of epochs above 0.");

  m_tooBig = false;
  if (!m_wizard.dataPage() || !m_wizard.methodPage() || !m_wizard.reviewPage()) return;  // still being built
  const auto& desc = m_wizard.modelDesc();
  const train::Dataset* ds = m_wizard.dataPage()->dataset();
  if (desc && m_batch->value() >= 1 && m_accum->value() >= 1) {
    train::TrainConfig c = m_wizard.buildConfig();
    const auto mem = train::estimate_memory(desc->params, desc->n_params, desc->file_size, c);
    const uint64_t avail = m_wizard.availableMemory();
    QString text = tr("<b>Memory</b> ≈ %1: base weights %2, trainable parameters %3 (%4 values), gradients %5, "
                      "AdamW moments %6, activations %7 (batch %8 × %9 tokens).")
                       .arg(bytes(mem.total), bytes(mem.base_weights), bytes(mem.parameters))
                       .arg(QLocale().toString(qlonglong(mem.trainable_params)))
                       .arg(bytes(mem.gradients), bytes(mem.optimizer), bytes(mem.activations))
                       .arg(c.training.batch_size)
                       .arg(c.data.max_length);
    if (avail > 0) text += tr(" Available now: %1.").arg(bytes(avail));
    if (const auto& gpus = m_wizard.backends()) {
      const auto gpu = train::estimate_gpu_training_memory(desc->params, desc->n_params, desc->file_size, c);
      train::TrainConfig rc = c;
      rc.training.recompute = true;  // what the GPU trainer falls back to when all layers' do not fit
      const auto least = train::estimate_gpu_training_memory(desc->params, desc->n_params, desc->file_size, rc);
      text += QStringLiteral("<br><b>GPU</b>: ") +
              gpuTrainingText(gpu, c.method, *gpus, least.total).toHtmlEscaped();
    }
    // Steps and tokens.
    int64_t steps = c.training.steps;
    double tokens_per_row = double(c.data.max_length);
    if (ds) {
      tokens_per_row = std::min(ds->stats.mean_len, double(c.data.max_length));
      if (steps == 0) {
        const double batches = std::ceil(double(ds->stats.train_examples) / double(c.training.batch_size));
        steps = int64_t(std::ceil(batches * c.training.epochs / double(c.training.grad_accum)));
      }
    }
    const double tokens = double(steps) * double(c.training.batch_size * c.training.grad_accum) * tokens_per_row;
    if (m_wizard.gemmFlops() > 0 && steps > 0) {
      const double flops = train::training_flops(desc->params, desc->n_params, mem.trainable_params, c.method, tokens,
                                                 int64_t(tokens_per_row));
      const double secs = flops / m_wizard.gemmFlops();
      text += tr("<br><b>Time</b> ≥ %1 for %2 steps (%3 tokens; %4 GFLOP at the measured %5 GFLOP/s).")
                  .arg(secs < 120 ? tr("%1 s").arg(secs, 0, 'f', 1) : tr("%1 min").arg(secs / 60, 0, 'f', 1))
                  .arg(steps)
                  .arg(QLocale().toString(qlonglong(tokens)))
                  .arg(flops / 1e9, 0, 'f', 1)
                  .arg(m_wizard.gemmFlops() / 1e9, 0, 'f', 1);
    } else if (steps > 0) {
      text += tr("<br><b>Time</b>: measuring this machine's speed…");
    }
    m_estimate->setText(text);
    if (avail > 0 && mem.total > avail) {
      m_tooBig = true;
      m_anyway->show();
      if (!m_anyway->isChecked())
        problems << tr("This run needs about %1 but only %2 is available: it would not fit in memory. Use LoRA, "
                       "a smaller batch or sequence length, or recompute; or tick \"Start anyway\".")
                        .arg(bytes(mem.total), bytes(avail));
    } else {
      m_anyway->hide();
    }
  } else if (!desc) {
    m_estimate->setText(tr("Choose a base model for an estimate."));
  }
  m_message->setText(problems.join(QLatin1Char('\n')));
  emit completeChanged();
}

bool WizardSettingsPage::isComplete() const { return m_message->text().isEmpty(); }
QString WizardSettingsPage::message() const { return m_message->text(); }
QString WizardSettingsPage::estimateText() const { return m_estimate->text(); }

// ---------------------------------------------------------------- (5) review

WizardReviewPage::WizardReviewPage(FineTuneWizard& wizard) : m_wizard(wizard) {
  setTitle(tr("Review"));
  setSubTitle(tr("The run's configuration (docs/training.md documents every key). Start queues it; it runs in "
                 "its own process and its dashboard opens on the Fine-tune page."));
  auto* l = new QVBoxLayout(this);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel(tr("Run name:"), this));
  m_name = new QLineEdit(this);
  m_name->setObjectName(QStringLiteral("runName"));
  row->addWidget(m_name, 1);
  auto* save = new QPushButton(tr("Save as preset…"), this);
  save->setObjectName(QStringLiteral("savePresetButton"));
  row->addWidget(save);
  l->addLayout(row);
  m_yaml = new QPlainTextEdit(this);
  m_yaml->setObjectName(QStringLiteral("runYaml"));
  m_yaml->setReadOnly(true);
  m_yaml->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  l->addWidget(m_yaml, 1);
  m_message = makeMessage(this);
  l->addWidget(m_message);
  connect(m_name, &QLineEdit::textChanged, this, &WizardReviewPage::rebuild);
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save as preset"), m_name->text() + QStringLiteral(".yaml"),
                                                   tr("YAML (*.yaml *.yml)"));
    if (f.isEmpty()) return;
    QString err;
    if (!m_wizard.savePreset(f, &err)) QMessageBox::warning(this, tr("Save as preset"), err);
  });
}

void WizardReviewPage::initializePage() {
  if (m_name->text().isEmpty()) {
    const QString base = m_wizard.modelLabel().isEmpty() ? QStringLiteral("run") : m_wizard.modelLabel();
    m_name->setText(QStringLiteral("%1-%2-%3")
                        .arg(base, m_wizard.methodPage()->isLora() ? QStringLiteral("lora") : QStringLiteral("full"),
                             QDateTime::currentDateTime().toString(QStringLiteral("MMdd-HHmm"))));
  }
  rebuild();
}

void WizardReviewPage::rebuild() {
  const train::TrainConfig c = m_wizard.buildConfig();
  m_yaml->setPlainText(qs(train::config_to_yaml(c)));
  auto v = train::validate_config(c);
  m_ok = bool(v) && !m_name->text().trimmed().isEmpty();
  if (m_name->text().trimmed().isEmpty()) m_message->setText(tr("Give the run a name."));
  else if (!v) m_message->setText(tr("The configuration is not valid: %1").arg(qs(v.error().to_string())));
  else m_message->clear();
  emit completeChanged();
}

bool WizardReviewPage::isComplete() const { return m_ok; }
QString WizardReviewPage::yaml() const { return m_yaml->toPlainText(); }
QString WizardReviewPage::message() const { return m_message->text(); }

// ---------------------------------------------------------------- wizard

FineTuneWizard::FineTuneWizard(AppContext& ctx, QWidget* parent) : QWizard(parent), m_ctx(ctx) {
  setObjectName(QStringLiteral("fineTuneWizard"));
  setWindowTitle(tr("New fine-tune"));
  setWizardStyle(QWizard::ClassicStyle);
  setOption(QWizard::NoBackButtonOnStartPage);
  setButtonText(QWizard::FinishButton, tr("Start"));
  m_modelPage = new WizardModelPage(ctx, *this);
  m_dataPage = new WizardDataPage(*this);
  m_settingsPage = new WizardSettingsPage(*this);
  m_methodPage = new WizardMethodPage(*this);
  m_reviewPage = new WizardReviewPage(*this);
  setPage(ModelPage, m_modelPage);
  setPage(DataPage, m_dataPage);
  setPage(MethodPage, m_methodPage);
  setPage(SettingsPage, m_settingsPage);
  setPage(ReviewPage, m_reviewPage);
  m_methodPage->applyPreset(1);
  resize(900, 640);
  connect(&m_gemmWatcher, &QFutureWatcher<double>::finished, this, [this] {
    m_gemmFlops = m_gemmWatcher.result();
    emit estimateInputsChanged();
  });
  m_gemmWatcher.setFuture(QtConcurrent::run([] { return train::measure_gemm_flops(0.2); }));
  connect(&m_backendWatcher, &QFutureWatcherBase::finished, this, [this] {
    if (m_backendsGiven || m_backendWatcher.future().resultCount() == 0) return;
    m_backends = m_backendWatcher.result();
    emit estimateInputsChanged();
  });
  m_backendWatcher.setFuture(QtConcurrent::run(queryBackendsOrReason));
}

FineTuneWizard::~FineTuneWizard() {
  m_gemmWatcher.waitForFinished();
  m_backendWatcher.disconnect(this);
  m_backendWatcher.waitForFinished();
}

void FineTuneWizard::setBackendInfo(const BackendInfo& info) {
  m_backendsGiven = true;
  m_backends = info;
  emit estimateInputsChanged();
}

void FineTuneWizard::setModel(std::optional<store::Id> versionId, const QString& path, const QString& label,
                              std::optional<ModelDesc> desc) {
  const bool changed = path != m_modelPath;
  m_versionId = versionId;
  m_modelPath = path;
  m_modelLabel = label;
  m_desc = std::move(desc);
  if (changed) emit modelChanged();
  emit estimateInputsChanged();
}

uint64_t FineTuneWizard::availableMemory() const {
  return m_memOverride > 0 ? m_memOverride : train::available_memory_bytes();
}

QString FineTuneWizard::runName() const { return m_reviewPage ? m_reviewPage->name()->text().trimmed() : QString(); }

train::TrainConfig FineTuneWizard::buildConfig() const {
  train::TrainConfig c;
  c.name = runName().toStdString();
  c.model = m_modelPath.toStdString();
  c.method = m_methodPage->isLora() ? train::Method::lora : train::Method::full;
  if (c.method == train::Method::lora) c.lora = m_methodPage->lora();
  const QString data = m_dataPage->findChild<QLineEdit*>(QStringLiteral("datasetFile"))->text().trimmed();
  if (!data.isEmpty()) c.data.train = fs::absolute(data.toStdString());
  c.data.max_length = m_dataPage->maxLength();
  c.data.validation_split = m_dataPage->validationShare();
  c.data.skip_bad_lines = m_dataPage->skipBadLines();
  if (const train::Dataset* d = m_dataPage->dataset()) c.data.format = d->format;
  m_settingsPage->fill(c);
  c.checkpoint.every = 0;
  // Explicit output formats: a full run exports the merged weights; LoRA the adapter (PEFT and GGUF)
  // and a merged F16 GGUF that the chat page can open directly.
  if (c.method == train::Method::full) c.output.formats = {"safetensors", "gguf-f16"};
  else c.output.formats = {"peft", "gguf-lora", "gguf-f16"};
  return c;
}

bool FineTuneWizard::savePreset(const QString& path, QString* error) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
    if (error) *error = tr("Cannot write %1: %2").arg(path, f.errorString());
    return false;
  }
  const std::string yaml = train::config_to_yaml(buildConfig());
  if (f.write(yaml.data(), qint64(yaml.size())) != qint64(yaml.size())) {
    if (error) *error = tr("Cannot write %1: %2").arg(path, f.errorString());
    return false;
  }
  return true;
}

void FineTuneWizard::accept() {
  QDir runs(QFileInfo(m_ctx.projectPath()).absolutePath());
  if (!runs.mkpath(QStringLiteral("runs")) || !runs.cd(QStringLiteral("runs"))) {
    QMessageBox::warning(this, windowTitle(), tr("Cannot create the folder %1.").arg(runs.filePath(QStringLiteral("runs"))));
    return;
  }
  QString safe = runName();
  safe.replace(QRegularExpression(QStringLiteral("[^A-Za-z0-9._-]")), QStringLiteral("_"));
  const QString path = runs.filePath(QStringLiteral("%1-%2.yaml").arg(safe, QDateTime::currentDateTimeUtc().toString(QStringLiteral("yyyyMMdd-HHmmss"))));
  QString err;
  if (!savePreset(path, &err)) {
    QMessageBox::warning(this, windowTitle(), err);
    return;
  }
  m_configPath = path;
  QWizard::accept();
}

}  // namespace hearth::ui
