/* ModelTableModel: the model library's rows (one per stored model) for a QTableView: name,
 * architecture, parameters, quantization, context length, file size and SHA-256.
 *
 * Non-obvious choice: the context length is not in the store, so it comes from ModelFacts the page
 * gathers on a worker (setFacts) and the column shows "…" until they arrive, or "missing" when the
 * file is gone. SORT_ROLE gives raw numbers so a QSortFilterProxyModel sorts 2 GB after 900 MB.
 *
 * Threading: GUI thread only.
 */
#pragma once

#include <QAbstractTableModel>
#include <QHash>
#include <vector>

#include "hearth/store/records.h"
#include "model-inspect.h"

namespace hearth::ui {

class ModelTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { NAME, ARCHITECTURE, PARAMETERS, QUANTIZATION, CONTEXT, SIZE, SHA256, COLUMN_COUNT };
  static constexpr int ID_ROLE = Qt::UserRole + 1;    // the store's model id (qint64)
  static constexpr int SORT_ROLE = Qt::UserRole + 2;  // numbers for numeric columns

  explicit ModelTableModel(QObject* parent = nullptr);

  void setModels(std::vector<store::Model> models);
  void setFacts(store::Id modelId, const ModelFacts& facts);
  void forgetFacts(store::Id modelId) { m_facts.remove(modelId); }
  const ModelFacts* facts(store::Id modelId) const;
  const store::Model* modelAt(int row) const;
  int rowOf(store::Id modelId) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  std::vector<store::Model> m_models;
  QHash<store::Id, ModelFacts> m_facts;
};

// The tensor types JSON array of a stored model as "F16, F32" (most frequent first, as imported).
QString quantizationText(const std::string& tensorTypesJson);

}  // namespace hearth::ui
