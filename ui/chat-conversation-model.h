/* ChatConversationModel: the project's conversations as a list (newest first), filtered by a search
 * text, renamable in place (editing the title writes it to the project at once).
 *
 * Non-obvious choice: the search runs in the store (title or any message text), not in a proxy model,
 * so a conversation is found by what was said in it without loading every message into the GUI.
 *
 * Threading: GUI thread only; reads and writes through the AppContext's project.
 */
#pragma once

#include <QAbstractListModel>
#include <vector>

#include "hearth/store/project.h"

namespace hearth::ui {

class ChatConversationModel : public QAbstractListModel {
  Q_OBJECT
 public:
  enum Roles { IdRole = Qt::UserRole + 1 };
  explicit ChatConversationModel(QObject* parent = nullptr);

  void setProject(store::Project* project) { m_project = project; }
  // Reloads from the project with the current search; returns the store's error text, or empty.
  QString reload();
  void setSearch(const QString& text);
  QString search() const { return m_search; }

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role) override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;

  store::Id idAt(int row) const;
  int rowOf(store::Id id) const;
  const store::Conversation* conversation(store::Id id) const;

 signals:
  void storeError(const QString& error);

 private:
  store::Project* m_project = nullptr;
  QString m_search;
  std::vector<store::Conversation> m_rows;
};

}  // namespace hearth::ui
