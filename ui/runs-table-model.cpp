/* RunsTableModel: see runs-table-model.h.
 *
 * Non-obvious choice: a reload that returns the same rows emits dataChanged instead of a model reset
 * when the row count is unchanged, so the 5 s refresh keeps the user's selection and scroll position.
 */
#include "runs-table-model.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <map>

#include "hearth/telemetry/energy.h"

namespace hearth::ui {
namespace {

// A number shown with `decimals` after scaling, "—" when absent; the raw value (-1 when absent) to sort.
QVariant figure(const std::optional<double>& v, double scale, int decimals, bool sort) {
  if (sort) return v ? QVariant(*v) : QVariant(-1.0);
  return v ? QString::number(*v * scale, 'f', decimals) : QStringLiteral("—");
}

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
    const QJsonObject best = QJsonDocument::fromJson(QByteArray::fromStdString(r.bestMetrics)).object();
    const QJsonObject config = QJsonDocument::fromJson(QByteArray::fromStdString(r.config)).object();
    auto number = [](const QJsonObject& o, const char* key) -> std::optional<double> {
      const QJsonValue v = o.value(QLatin1String(key));
      return v.isDouble() ? std::optional<double>(v.toDouble()) : std::nullopt;
    };
    row.method = config.value(QStringLiteral("method")).toString();
    row.finalLoss = number(metrics, "loss");
    row.finalValLoss = number(metrics, "val_loss");
    row.bestValLoss = number(best, "val_loss");
    const auto tokens = number(metrics, "tokens_seen"), elapsed = number(metrics, "elapsed_s");
    if (tokens && elapsed && *elapsed > 0) row.tokensPerSecond = *tokens / *elapsed;
    if (r.energyJoules)
      row.co2eGrams = telemetry::co2eGrams(*r.energyJoules, number(metrics, "grid_g_per_kwh").value_or(telemetry::DEFAULT_GRID_G_PER_KWH));
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
      case FINAL_LOSS: case FINAL_VAL_LOSS: case BEST_VAL_LOSS: case TOKENS_PER_S: case ENERGY: case CO2E:
      case DURATION:
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
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
    case METHOD: return row->method;
    case FINAL_LOSS: return figure(row->finalLoss, 1.0, 4, sort);
    case FINAL_VAL_LOSS: return figure(row->finalValLoss, 1.0, 4, sort);
    case BEST_VAL_LOSS: return figure(row->bestValLoss, 1.0, 4, sort);
    case TOKENS_PER_S: return figure(row->tokensPerSecond, 1.0, 1, sort);
    case CO2E: return figure(row->co2eGrams, 1.0, 2, sort);
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
    case METHOD: return tr("Method");
    case FINAL_LOSS: return tr("Final loss");
    case FINAL_VAL_LOSS: return tr("Final val. loss");
    case BEST_VAL_LOSS: return tr("Best val. loss");
    case TOKENS_PER_S: return tr("Tokens/s");
    case CO2E: return tr("CO2e (g)");
    case ENERGY: return tr("Energy (kWh)");
    case DURATION: return tr("Duration");
    case STARTED: return tr("Started");
    default: return {};
  }
}

}  // namespace hearth::ui
