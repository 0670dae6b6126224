/* RunDashboard: the live view of one fine-tuning job of the RunQueue: training and validation loss,
 * throughput (tokens/s), power (W) with the cumulative energy, learning rate and gradient norm, progress
 * with the time remaining, the sample generations of each evaluation, and Pause, Resume and Stop.
 *
 * Non-obvious choice: the child process writes the metrics into the project (WAL); the dashboard reads
 * them on a 2 Hz QTimer, incrementally (only steps above the last one read per metric), and the charts
 * are redrawn from that timer, never per training step or per stdout line. It reads through the
 * window's connection (AppContext), NOT a second one: store::Project::open() reads the file header with
 * an ifstream, and closing that descriptor drops every POSIX lock this process holds on the file
 * (fcntl semantics), after which the child may reset the WAL under the window's connections and they
 * read "database disk image is malformed" (seen in tst_rundashboard; reported to the store's owner). The
 * child's stderr lines (via the queue) only feed the status text, the progress bar and the "training on"
 * line (where the run trains; read from the run's record instead when the line was not seen).
 * Closing a dashboard does not touch the run: the queue owns the process.
 *
 * Threads: GUI thread only.
 */
#pragma once

#include <QTimer>
#include <QWidget>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hearth/store/project.h"
#include "run-data.h"

class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace hearth::ui {

class MetricChart;
class RunQueue;

class RunDashboard : public QWidget {
  Q_OBJECT
 public:
  static constexpr int POLL_MS = 500;
  RunDashboard(RunQueue& queue, int jobId, QWidget* parent = nullptr);
  ~RunDashboard() override;

  int jobId() const { return m_jobId; }
  // Reads new points now (the timer calls this) and redraws the charts when something arrived.
  void poll();
  // Points read so far of a metric ("loss", "val_loss", "tokens_per_s", "power_w", "energy_j", "lr",
  // "grad_norm").
  int pointCount(const std::string& metric) const;
  MetricChart* lossChart() const { return m_loss; }
  QString samplesText() const;
  QString statusText() const;
  // Where the run trains: the child's "training on ..." line, else the run's record (its hardware JSON's
  // last "training_devices" entry), e.g. "Training on the GPU: NVIDIA H200 (GPU 0), BF16 mixed precision".
  QString deviceText() const;

 private:
  void refreshJob();
  void redraw();

  RunQueue& m_queue;
  int m_jobId;
  bool m_runDirRead = false;
  store::Id m_runId = 0;
  std::map<std::string, SeriesData> m_data;
  double m_firstWall = 0;
  bool m_dirty = false;
  QString m_samplesFile;
  qint64 m_samplesSize = -1;
  QTimer m_timer;
  MetricChart *m_loss, *m_speed, *m_power, *m_lr, *m_grad;
  void readDeviceFromRecord();
  QLabel *m_title, *m_status, *m_energy, *m_eta, *m_device;
  QProgressBar* m_progress;
  QPlainTextEdit* m_samples;
  QPushButton *m_pause, *m_resume, *m_stop;
};

}  // namespace hearth::ui
