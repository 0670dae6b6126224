/* ChatSettingsPanel: editors for a session::ChatSettings value.
 *
 * Non-obvious choice: while "Override" is off the template box shows the model's own template read-only
 * (or the ChatML fallback, labelled as such); turning it on starts the override from that text, so the
 * usual edit is a small change to what the model ships.
 */
#include "chat-settings-panel.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QScrollArea>
#include <QSpinBox>
#include <QVBoxLayout>

namespace hearth::ui {

ChatSettingsPanel::ChatSettingsPanel(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("chatSettingsPanel"));
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  auto* inner = new QWidget(scroll);
  auto* col = new QVBoxLayout(inner);
  scroll->setWidget(inner);
  outer->addWidget(scroll);

  col->addWidget(new QLabel(tr("<b>System prompt</b>"), inner));
  m_system = new QPlainTextEdit(inner);
  m_system->setObjectName(QStringLiteral("systemPrompt"));
  m_system->setPlaceholderText(tr("You are a helpful assistant."));
  m_system->setMaximumHeight(110);
  col->addWidget(m_system);

  auto* form = new QFormLayout;
  auto dspin = [&](const char* name, double lo, double hi, double step, int decimals) {
    auto* s = new QDoubleSpinBox(inner);
    s->setObjectName(QString::fromLatin1(name));
    s->setRange(lo, hi);
    s->setSingleStep(step);
    s->setDecimals(decimals);
    return s;
  };
  auto ispin = [&](const char* name, int lo, int hi) {
    auto* s = new QSpinBox(inner);
    s->setObjectName(QString::fromLatin1(name));
    s->setRange(lo, hi);
    return s;
  };
  m_temperature = dspin("temperature", 0, 5, 0.05, 2);
  m_temperature->setToolTip(tr("0 picks the most likely token every time"));
  m_topK = ispin("topK", 0, 100000);
  m_topK->setToolTip(tr("0: off"));
  m_topP = dspin("topP", 0, 1, 0.01, 2);
  m_minP = dspin("minP", 0, 1, 0.01, 2);
  m_repeat = dspin("repeatPenalty", 0.5, 3, 0.05, 2);
  m_maxTokens = ispin("maxTokens", -1, 1 << 20);
  m_maxTokens->setToolTip(tr("-1: until the model stops or the context is full"));
  m_seed = ispin("seed", 0, 2147483647);
  m_ctx = ispin("contextLength", 128, 1 << 20);
  m_ctx->setSingleStep(512);
  m_ctx->setToolTip(tr("Capped at the model's training context"));
  form->addRow(tr("Temperature"), m_temperature);
  form->addRow(tr("Top-k"), m_topK);
  form->addRow(tr("Top-p"), m_topP);
  form->addRow(tr("Min-p"), m_minP);
  form->addRow(tr("Repeat penalty"), m_repeat);
  form->addRow(tr("Max tokens"), m_maxTokens);
  form->addRow(tr("Seed"), m_seed);
  form->addRow(tr("Context length"), m_ctx);
  col->addLayout(form);

  auto* head = new QHBoxLayout;
  head->addWidget(new QLabel(tr("<b>Chat template</b>"), inner));
  head->addStretch(1);
  m_override = new QCheckBox(tr("Override"), inner);
  m_override->setObjectName(QStringLiteral("templateOverride"));
  head->addWidget(m_override);
  col->addLayout(head);
  m_templateNote = new QLabel(inner);
  m_templateNote->setWordWrap(true);
  col->addWidget(m_templateNote);
  m_template = new QPlainTextEdit(inner);
  m_template->setObjectName(QStringLiteral("templateText"));
  m_template->setLineWrapMode(QPlainTextEdit::NoWrap);
  QFont mono(QStringLiteral("monospace"));
  mono.setStyleHint(QFont::Monospace);
  m_template->setFont(mono);
  col->addWidget(m_template, 1);

  setSettings(session::ChatSettings{});

  auto emitChanged = [this] {
    if (!m_updating) emit changed();
  };
  for (auto* s : {m_temperature, m_topP, m_minP, m_repeat})
    connect(s, &QDoubleSpinBox::valueChanged, this, emitChanged);
  for (auto* s : {m_topK, m_maxTokens, m_seed, m_ctx}) connect(s, &QSpinBox::valueChanged, this, emitChanged);
  connect(m_system, &QPlainTextEdit::textChanged, this, [this] {
    if (m_updating) return;
    emit systemPromptChanged();
    emit changed();
  });
  connect(m_override, &QCheckBox::toggled, this, [this, emitChanged](bool on) {
    if (on && m_overrideText.isEmpty()) m_overrideText = m_fallback ? QString::fromUtf8(session::ChatSession::FALLBACK_TEMPLATE) : m_modelTemplate;
    showTemplate();
    emitChanged();
  });
  connect(m_template, &QPlainTextEdit::textChanged, this, [this, emitChanged] {
    if (m_updating || !m_override->isChecked()) return;
    m_overrideText = m_template->toPlainText();
    emitChanged();
  });
}

session::ChatSettings ChatSettingsPanel::settings() const {
  session::ChatSettings s;
  s.systemPrompt = m_system->toPlainText().toStdString();
  s.sampling.temperature = float(m_temperature->value());
  s.sampling.top_k = m_topK->value();
  s.sampling.top_p = float(m_topP->value());
  s.sampling.min_p = float(m_minP->value());
  s.sampling.repeat_penalty = float(m_repeat->value());
  s.sampling.seed = uint64_t(m_seed->value());
  s.maxTokens = m_maxTokens->value();
  s.nCtx = m_ctx->value();
  if (m_override->isChecked()) s.templateOverride = m_overrideText.toStdString();
  return s;
}

void ChatSettingsPanel::setSettings(const session::ChatSettings& s) {
  m_updating = true;
  m_system->setPlainText(QString::fromStdString(s.systemPrompt));
  m_temperature->setValue(s.sampling.temperature);
  m_topK->setValue(int(std::clamp<int64_t>(s.sampling.top_k, 0, 100000)));
  m_topP->setValue(s.sampling.top_p);
  m_minP->setValue(s.sampling.min_p);
  m_repeat->setValue(s.sampling.repeat_penalty);
  m_seed->setValue(int(s.sampling.seed % 2147483648ull));
  m_maxTokens->setValue(int(std::clamp<int64_t>(s.maxTokens, -1, 1 << 20)));
  m_ctx->setValue(int(std::clamp<int64_t>(s.nCtx, 128, 1 << 20)));
  m_overrideText = QString::fromStdString(s.templateOverride);
  m_override->setChecked(!s.templateOverride.empty());
  showTemplate();
  m_updating = false;
}

void ChatSettingsPanel::setModelTemplate(const QString& source, bool fallback) {
  m_modelTemplate = source;
  m_fallback = fallback;
  m_templateKnown = true;
  m_updating = true;
  showTemplate();
  m_updating = false;
}

void ChatSettingsPanel::setSystemPrompt(const QString& text) { m_system->setPlainText(text); }

void ChatSettingsPanel::showTemplate() {
  bool was = m_updating;
  m_updating = true;
  if (m_override->isChecked()) {
    m_template->setReadOnly(false);
    m_template->setPlainText(m_overrideText);
    m_templateNote->setText(tr("Overridden for this conversation."));
  } else {
    m_template->setReadOnly(true);
    m_template->setPlainText(m_fallback ? QString::fromUtf8(session::ChatSession::FALLBACK_TEMPLATE) : m_modelTemplate);
    m_templateNote->setText(!m_templateKnown ? tr("Shown when the model is loaded (on the first message).")
                            : m_fallback     ? tr("The model has no chat template: ChatML is used.")
                                             : tr("The model's own template."));
  }
  m_updating = was;
}

}  // namespace hearth::ui
