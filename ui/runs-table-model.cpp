/* RunsTableModel: see runs-table-model.h.
 *
 * Non-obvious choice: a reload that returns the same rows emits dataChanged instead of a model reset
 * when the row count is unchanged, so the 5 s refresh keeps the user's selection and scroll position.
 */
#include "runs-table-model.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <map>

namespace hearth::ui {
namespace {

QDateTime parseTime(const std::optional<std::string>& iso) {
  if (!iso || iso->empty()) return {};
  QDateTime t = QDateTime::fromString(QString::fromStdString(*iso), Qt::ISODateWithMs);
  if (!t.isValid()) t = QDateTime::fromString(QString::fromStdString(*iso), Qt::ISODate);
  return t;
}

}  // namespace

QString formatDuration(double seconds) {
  const qint64 s = static_cast<qint64>(seconds + 0.5);
  if (s >= 3600) return QObject::tr("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60, 2, 10, QLatin1Char('0'));
  if (s >= 60) return QObject::tr("%1 min %2 s").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
  return QObject::tr("%1 s").arg(s);
}

RunsTableModel::RunsTableModel(QObject* parent) : QAbstractTableModel(parent) {}

Expected<void> RunsTableModel::reload(store::Project& project) {
  HEARTH_TRY(std::vector<store::Run> runs, project.runs());
  std::map<store::Id, QString> versionNames, datasetNames;
  std::vector<Row> rows;
  rows.reserve(runs.size());
  const QDateTime now = QDateTime::currentDateTimeUtc();
  for (auto& r : runs) {
    Row row;
    if (r.baseVersionId) {
      auto it = versionNames.find(*r.baseVersionId);
      if (it == versionNames.end()) {
        QString name = tr("version %1").arg(*r.baseVersionId);
        if (auto v = project.modelVersion(*r.baseVersionId)) {
          if (auto m = project.model(v->modelId)) {
            name = QString::fromStdString(m->name);
            if (!v->label.empty() && v->label != "base") name += QStringLiteral(" (%1)").arg(QString::fromStdString(v->label));
          }
        }
        it = versionNames.emplace(*r.baseVersionId, name).first;
      }
      row.baseModel = it->second;
    }
    if (r.datasetId) {
      auto it = datasetNames.find(*r.datasetId);
      if (it == datasetNames.end()) {
        QString name = tr("dataset %1").arg(*r.datasetId);
        if (auto d = project.dataset(*r.datasetId)) name = QString::fromStdString(d->name);
        it = datasetNames.emplace(*r.datasetId, name).first;
      }
      row.dataset = it->second;
    }
    const QJsonObject metrics = QJsonDocument::fromJson(QByteArray::fromStdString(r.finalMetrics)).object();
    if (metrics.value(QStringLiteral("loss")).isDouble()) row.finalLoss = metrics.value(QStringLiteral("loss")).toDouble();
    const QDateTime started = parseTime(r.startedAt);
    const QDateTime finished = parseTime(r.finishedAt);
    if (started.isValid()) {
      if (finished.isValid()) row.seconds = started.msecsTo(finished) / 1000.0;
      else if (r.status == store::RunStatus::running) row.seconds = started.msecsTo(now) / 1000.0;
    }
    row.run = std::move(r);
    rows.push_back(std::move(row));
  }
  if (rows.size() == m_rows.size()) {
    m_rows = std::move(rows);
    if (!m_rows.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, COLUMN_COUNT - 1));
  } else {
    beginResetModel();
    m_rows = std::move(rows);
    endResetModel();
  }
  return {};
}

const RunsTableModel::Row* RunsTableModel::rowAt(int row) const {
  if (row < 0 || row >= static_cast<int>(m_rows.size())) return nullptr;
  return &m_rows[static_cast<std::size_t>(row)];
}

int RunsTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(m_rows.size());
}
int RunsTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : COLUMN_COUNT; }

QVariant RunsTableModel::data(const QModelIndex& index, int role) const {
  const Row* row = rowAt(index.row());
  if (!row) return {};
  const store::Run& r = row->run;
  if (role == ID_ROLE) return QVariant::fromValue<qint64>(r.id);
  if (role == Qt::ToolTipRole) {
    if (!r.error.empty()) return QString::fromStdString(r.error);
    return QString::fromStdString(r.hardware);
  }
  if (role == Qt::TextAlignmentRole) {
    switch (index.column()) {
      case FINAL_LOSS: case ENERGY: case DURATION: return QVariant(Qt::AlignRight | Qt::AlignVCenter);
      default: return {};
    }
  }
  if (role != Qt::DisplayRole && role != SORT_ROLE) return {};
  const bool sort = role == SORT_ROLE;
  switch (index.column()) {
    case STATUS: return QString::fromLatin1(store::runStatusName(r.status));
    case NAME: return r.name.empty() ? tr("run %1").arg(r.id) : QString::fromStdString(r.name);
    case KIND: return QString::fromStdString(r.kind);
    case BASE_MODEL: return row->baseModel;
    case DATASET: return row->dataset;
    case FINAL_LOSS:
      if (sort) return row->finalLoss ? QVariant(*row->finalLoss) : QVariant(-1.0);
      return row->finalLoss ? QString::number(*row->finalLoss, 'f', 4) : QStringLiteral("—");
    case ENERGY:
      if (sort) return r.energyJoules ? QVariant(*r.energyJoules) : QVariant(-1.0);
      return r.energyJoules ? QString::number(*r.energyJoules / 3.6e6, 'f', 5) : QStringLiteral("—");
    case DURATION:
      if (sort) return row->seconds ? QVariant(*row->seconds) : QVariant(-1.0);
      return row->seconds ? formatDuration(*row->seconds) : QStringLiteral("—");
    case STARTED:
      if (sort) return QString::fromStdString(r.startedAt.value_or(r.createdAt));
      if (QDateTime t = parseTime(r.startedAt); t.isValid())
        return t.toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm:ss"));
      return QString::fromStdString(r.startedAt.value_or(std::string()));
    default: return {};
  }
}

QVariant RunsTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case STATUS: return tr("Status");
    case NAME: return tr("Name");
    case KIND: return tr("Kind");
    case BASE_MODEL: return tr("Base model");
    case DATASET: return tr("Dataset");
    case FINAL_LOSS: return tr("Final loss");
    case ENERGY: return tr("Energy (kWh)");
    case DURATION: return tr("Duration");
    case STARTED: return tr("Started");
    default: return {};
  }
}

}  // namespace hearth::ui
