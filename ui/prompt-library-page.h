/* PromptLibraryPage: the Prompts page. Saved prompts and system prompts with tags and versions,
 * searchable and filtered by tag; every save of a changed text is a new version (history kept);
 * "Use in chat" sends the text to the chat page (AppContext::insertPrompt).
 *
 * Non-obvious choice: the store has no prompt kind, so a system prompt is a prompt tagged "system";
 * the Kind box only adds or removes that tag, and the CLI and other tools see the same thing.
 *
 * Threading: GUI thread only.
 */
#pragma once

#include <QList>
#include <QWidget>

#include "hearth/store/records.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QPushButton;

namespace hearth::ui {

class AppContext;
class MessageBanner;

class PromptLibraryPage : public QWidget {
  Q_OBJECT
 public:
  static constexpr const char* SYSTEM_TAG = "system";

  explicit PromptLibraryPage(AppContext& ctx, QWidget* parent = nullptr);

  void selectPrompt(store::Id id);
  store::Id currentPromptId() const;           // 0 while a new prompt is being written
  QList<store::Id> visiblePromptIds() const;   // after search and tag filter, in list order
  QString bannerText() const;

  // The buttons' actions (tests call them after filling the fields, as a user would click).
  void newPrompt();   // clears the editor for a new prompt
  bool save();        // creates, or stores a new version / new tags; errors go to the banner
  void use();         // inserts the editor's text into the chat

 private:
  void reload();
  void applyFilter();
  void showPrompt();
  void showVersion();
  QStringList editedTags() const;

  AppContext& m_ctx;
  MessageBanner* m_banner;
  QLineEdit* m_search;
  QComboBox* m_tagFilter;
  QListWidget* m_list;
  QLineEdit* m_name;
  QComboBox* m_kind;
  QLineEdit* m_tags;
  QPlainTextEdit* m_text;
  QLabel* m_versionLabel;
  QListWidget* m_versions;
  QPlainTextEdit* m_versionText;
  QPushButton* m_restore;
  std::vector<store::Prompt> m_prompts;
  store::Id m_current = 0;
};

}  // namespace hearth::ui
