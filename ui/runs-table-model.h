/* RunsTableModel: the runs of the project for the Runs page: status, name, kind, base model, dataset,
 * method, final (training) loss, final and best validation loss, tokens/s, energy (kWh), CO2e (g),
 * duration and start time, with raw values under SORT_ROLE (= Qt::UserRole + 2) for sorting.
 *
 * Figures come from the run record only (finalMetrics, bestMetrics, energyJoules, config.method), never
 * from its metric series, so a reload stays one query however long the runs are. Tokens/s is
 * finalMetrics.tokens_seen / finalMetrics.elapsed_s. CO2e uses the grid intensity the run recorded
 * (finalMetrics.grid_g_per_kwh), else telemetry::DEFAULT_GRID_G_PER_KWH. Missing figures show "—"
 * and sort as -1.
 *
 * Non-obvious choice: names of base models and datasets are resolved once per reload (a run refers to
 * them by id) and kept in the row, so sorting and painting never query the store.
 *
 * Threading: GUI thread only (reload() reads the AppContext's Project).
 */
#pragma once

#include <QAbstractTableModel>
#include <QDateTime>
#include <optional>
#include <vector>

#include "hearth/error.h"
#include "hearth/store/project.h"

namespace hearth::ui {

class RunsTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column {
    STATUS, NAME, KIND, BASE_MODEL, DATASET, METHOD, FINAL_LOSS, FINAL_VAL_LOSS, BEST_VAL_LOSS, TOKENS_PER_S,
    ENERGY, CO2E, DURATION, STARTED, COLUMN_COUNT
  };
  static constexpr int ID_ROLE = Qt::UserRole + 1;
  static constexpr int SORT_ROLE = Qt::UserRole + 2;

  struct Row {
    store::Run run;
    QString baseModel;  // "name (label)" or empty
    QString dataset;
    QString method;  // config.method: lora, full, pretrain (empty for runs without one)
    std::optional<double> finalLoss;
    std::optional<double> finalValLoss;
    std::optional<double> bestValLoss;
    std::optional<double> tokensPerSecond;
    std::optional<double> co2eGrams;
    std::optional<double> seconds;  // finished - started, or now - started while running
  };

  explicit RunsTableModel(QObject* parent = nullptr);

  // Reads every run; on failure keeps the old rows and returns the error.
  Expected<void> reload(store::Project& project);
  const Row* rowAt(int row) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  std::vector<Row> m_rows;
};

// "2 h 03 min", "4 min 05 s", "12 s".
QString formatDuration(double seconds);

}  // namespace hearth::ui
