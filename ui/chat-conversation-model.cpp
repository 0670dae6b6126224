/* ChatConversationModel: conversations listed from the project, searched in the store, renamed in place.
 *
 * Non-obvious choice: an untitled conversation shows "Conversation N" but keeps its empty title in the
 * store, so the first user message can still name it later.
 */
#include "chat-conversation-model.h"

namespace hearth::ui {

ChatConversationModel::ChatConversationModel(QObject* parent) : QAbstractListModel(parent) {}

QString ChatConversationModel::reload() {
  beginResetModel();
  m_rows.clear();
  QString error;
  if (m_project) {
    auto list = m_project->conversations(m_search.toStdString());
    if (list)
      m_rows = std::move(*list);
    else
      error = QString::fromStdString(list.error().to_string());
  }
  endResetModel();
  if (!error.isEmpty()) emit storeError(error);
  return error;
}

void ChatConversationModel::setSearch(const QString& text) {
  if (text == m_search) return;
  m_search = text;
  reload();
}

int ChatConversationModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : int(m_rows.size());
}

QVariant ChatConversationModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() < 0 || index.row() >= int(m_rows.size())) return {};
  const auto& c = m_rows[size_t(index.row())];
  switch (role) {
    case Qt::DisplayRole:
      return c.title.empty() ? tr("Conversation %1").arg(c.id) : QString::fromStdString(c.title);
    case Qt::EditRole:
      return QString::fromStdString(c.title);
    case Qt::ToolTipRole:
      return tr("Started %1").arg(QString::fromStdString(c.createdAt));
    case IdRole:
      return QVariant::fromValue(qint64(c.id));
    default:
      return {};
  }
}

bool ChatConversationModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (role != Qt::EditRole || !m_project || !index.isValid() || index.row() >= int(m_rows.size())) return false;
  store::Conversation c = m_rows[size_t(index.row())];
  c.title = value.toString().trimmed().toStdString();
  auto ok = m_project->updateConversation(c);
  if (!ok) {
    emit storeError(QString::fromStdString(ok.error().to_string()));
    return false;
  }
  m_rows[size_t(index.row())] = c;
  emit dataChanged(index, index, {Qt::DisplayRole, Qt::EditRole});
  return true;
}

Qt::ItemFlags ChatConversationModel::flags(const QModelIndex& index) const {
  auto f = QAbstractListModel::flags(index);
  if (index.isValid()) f |= Qt::ItemIsEditable;
  return f;
}

store::Id ChatConversationModel::idAt(int row) const {
  return row >= 0 && row < int(m_rows.size()) ? m_rows[size_t(row)].id : 0;
}

int ChatConversationModel::rowOf(store::Id id) const {
  for (size_t i = 0; i < m_rows.size(); ++i)
    if (m_rows[i].id == id) return int(i);
  return -1;
}

const store::Conversation* ChatConversationModel::conversation(store::Id id) const {
  int r = rowOf(id);
  return r < 0 ? nullptr : &m_rows[size_t(r)];
}

}  // namespace hearth::ui
