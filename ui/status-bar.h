/* HardwareStatus: the status bar's permanent labels: CPU (name, threads), GPU (hearth::query_backends),
 * memory (available / physical) and live power from the window's telemetry Sampler.
 *
 * Non-obvious choice: the Sampler reads the sensors on its own thread; this class only copies its
 * latest snapshot from a 1 Hz QTimer, so the GUI thread never waits for a sensor. Power is marked
 * "(estimated)" when any channel that contributes is an estimate, never passed off as measured.
 *
 * Threading: GUI thread; the one-off hardware query runs on QtConcurrent's pool.
 */
#pragma once

#include <QObject>
#include <QTimer>

class QLabel;
class QStatusBar;

namespace hearth::ui {

class AppContext;

class HardwareStatus : public QObject {
  Q_OBJECT
 public:
  HardwareStatus(AppContext& ctx, QStatusBar* bar);

  QString cpuText() const;
  QString gpuText() const;
  QString memoryText() const;
  QString powerText() const;

  // Re-reads memory and power now (the timer calls it every second).
  void refresh();

 signals:
  void hardwareKnown();  // CPU and GPU labels are filled (after the background query)

 private:
  AppContext& m_ctx;
  QLabel* m_cpu;
  QLabel* m_gpu;
  QLabel* m_memory;
  QLabel* m_power;
  QTimer m_timer;
};

}  // namespace hearth::ui
