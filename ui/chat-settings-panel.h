/* ChatSettingsPanel: the chat's side panel: system prompt, sampling (temperature, top-k, top-p, min-p,
 * repeat penalty), maximum tokens, seed, context length, and the chat template (shown; overridable).
 *
 * Non-obvious choice: the panel holds no state of its own beyond its editors: settings() reads them
 * into a session::ChatSettings value and setSettings() writes one back, so the page decides where
 * settings live (per conversation, docs/chat.md) and the panel never touches the store.
 */
#pragma once

#include <QWidget>

#include "hearth/session/chat-session.h"

class QCheckBox;
class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QSpinBox;

namespace hearth::ui {

class ChatSettingsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ChatSettingsPanel(QWidget* parent = nullptr);

  session::ChatSettings settings() const;
  void setSettings(const session::ChatSettings& s);  // emits nothing
  // The loaded model's template (shown when not overridden); `fallback`: the model has none.
  void setModelTemplate(const QString& source, bool fallback);
  void setSystemPrompt(const QString& text);  // emits changed()

 signals:
  void changed();
  void systemPromptChanged();

 private:
  void showTemplate();
  QPlainTextEdit* m_system = nullptr;
  QDoubleSpinBox* m_temperature = nullptr;
  QSpinBox* m_topK = nullptr;
  QDoubleSpinBox* m_topP = nullptr;
  QDoubleSpinBox* m_minP = nullptr;
  QDoubleSpinBox* m_repeat = nullptr;
  QSpinBox* m_maxTokens = nullptr;
  QSpinBox* m_seed = nullptr;
  QSpinBox* m_ctx = nullptr;
  QCheckBox* m_override = nullptr;
  QPlainTextEdit* m_template = nullptr;
  QLabel* m_templateNote = nullptr;
  QString m_modelTemplate;
  bool m_fallback = false;
  bool m_templateKnown = false;  // a model has been loaded
  QString m_overrideText;
  bool m_updating = false;
};

}  // namespace hearth::ui
