/* ModelTableModel: see model-table-model.h.
 *
 * Non-obvious choice: the SHA-256 column shows the first 12 hex digits (enough to tell files apart at
 * a glance); the full hash is the tooltip and what copy (Ctrl+C on the view) would give.
 */
#include "model-table-model.h"

#include <QJsonArray>
#include <QJsonDocument>

#include "hearth/model.h"

namespace hearth::ui {

QString quantizationText(const std::string& tensorTypesJson) {
  QJsonDocument doc = QJsonDocument::fromJson(QByteArray::fromStdString(tensorTypesJson));
  QStringList types;
  for (const auto& v : doc.array()) types << v.toString();
  return types.join(QStringLiteral(", "));
}

ModelTableModel::ModelTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void ModelTableModel::setModels(std::vector<store::Model> models) {
  beginResetModel();
  m_models = std::move(models);
  endResetModel();
}

void ModelTableModel::setFacts(store::Id modelId, const ModelFacts& facts) {
  m_facts.insert(modelId, facts);
  int row = rowOf(modelId);
  if (row >= 0) emit dataChanged(index(row, 0), index(row, COLUMN_COUNT - 1));
}

const ModelFacts* ModelTableModel::facts(store::Id modelId) const {
  auto it = m_facts.constFind(modelId);
  return it == m_facts.constEnd() ? nullptr : &*it;
}

const store::Model* ModelTableModel::modelAt(int row) const {
  if (row < 0 || row >= static_cast<int>(m_models.size())) return nullptr;
  return &m_models[static_cast<std::size_t>(row)];
}

int ModelTableModel::rowOf(store::Id modelId) const {
  for (std::size_t i = 0; i < m_models.size(); ++i)
    if (m_models[i].id == modelId) return static_cast<int>(i);
  return -1;
}

int ModelTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(m_models.size());
}

int ModelTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : COLUMN_COUNT; }

QVariant ModelTableModel::data(const QModelIndex& index, int role) const {
  const store::Model* m = modelAt(index.row());
  if (!m || index.column() < 0 || index.column() >= COLUMN_COUNT) return {};
  const ModelFacts* f = facts(m->id);
  if (role == ID_ROLE) return QVariant::fromValue<qint64>(m->id);
  if (role == Qt::ToolTipRole) {
    QString tip = QString::fromStdString(m->path);
    if (index.column() == SHA256) tip = QString::fromStdString(m->sha256);
    if (f && !f->ok()) tip += QStringLiteral("\n") + f->error;
    return tip;
  }
  if (role == Qt::TextAlignmentRole) {
    switch (index.column()) {
      case PARAMETERS: case CONTEXT: case SIZE: return QVariant(Qt::AlignRight | Qt::AlignVCenter);
      default: return {};
    }
  }
  if (role != Qt::DisplayRole && role != SORT_ROLE) return {};
  const bool sort = role == SORT_ROLE;
  switch (index.column()) {
    case NAME: return QString::fromStdString(m->name);
    case ARCHITECTURE: return QString::fromStdString(m->architecture);
    case PARAMETERS:
      if (sort) return QVariant::fromValue<qint64>(m->parameters);
      return QString::fromStdString(format_param_count(m->parameters));
    case QUANTIZATION: return quantizationText(m->tensorTypes);
    case CONTEXT:
      if (sort) return QVariant::fromValue<qint64>(f && f->ok() ? f->contextLength : -1);
      if (!f) return QStringLiteral("…");
      if (!f->ok()) return tr("missing");
      return QLocale().toString(static_cast<qlonglong>(f->contextLength));
    case SIZE:
      if (sort) return QVariant::fromValue<qint64>(m->sizeBytes);
      return formatBytes(m->sizeBytes);
    case SHA256:
      if (sort) return QString::fromStdString(m->sha256);
      return QString::fromStdString(m->sha256).left(12);
    default: return {};
  }
}

QVariant ModelTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case NAME: return tr("Name");
    case ARCHITECTURE: return tr("Architecture");
    case PARAMETERS: return tr("Parameters");
    case QUANTIZATION: return tr("Quantization");
    case CONTEXT: return tr("Context");
    case SIZE: return tr("File size");
    case SHA256: return tr("SHA-256");
    default: return {};
  }
}

}  // namespace hearth::ui
