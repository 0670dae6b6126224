/* RunQueue: fine-tuning runs executed one at a time, each in a CHILD process
 * `hearth-cli train CONFIG.yaml --project PROJECT` (or `hearth-cli train --resume RUN_ID --project ...`).
 *
 * Non-obvious choices (docs/desktop.md, "Fine-tuning runs in a child process"):
 * - A child process, not a worker thread: a crash (or an out-of-memory kill) in training cannot take the
 *   window down, the CLI's tested SIGINT path gives Stop and Pause for free (checkpoint, exit 130,
 *   resumable), and the child writes the project through its own connection (WAL).
 * - Stop and Pause both send SIGINT; they differ only in what the job shows (stopped / paused) and that a
 *   paused job offers Resume (a new child with --resume RUN_ID, the same run id).
 * - The run id is learnt while the child runs from the project: the running run whose owner pid is the
 *   child's (the store records the owner), so the dashboard can chart before the child prints `run: ID`.
 * - A child that crashes or exits with an error leaves the job `failed` with its last stderr lines; a
 *   run row it left `running` is marked failed with that text.
 *
 * Lifetime: owned by the fine-tune page (which lives as long as the main window and its AppContext), so
 * runs go on while their dashboards are closed. On destruction a running child gets SIGINT and up to
 * 30 s to write its checkpoint.
 * Threads: GUI thread only.
 */
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QPointer>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTimer>
#include <optional>
#include <vector>

#include "hearth/store/records.h"

namespace hearth::ui {

class AppContext;

class RunQueue : public QObject {
  Q_OBJECT
 public:
  enum class State { queued, running, stopping, pausing, paused, stopped, finished, failed };
  static QString stateName(State s);

  struct Job {
    int id = 0;                        // ticket within this queue
    QString name;                      // shown in the list
    QString configPath;                // empty for a resume job
    std::optional<store::Id> resumeRunId;
    store::Id runId = 0;               // 0 until known
    std::optional<store::Id> baseVersionId;
    std::optional<store::Id> outputVersionId;  // from the child's `version:` lines: the adapter (LoRA)
    std::optional<store::Id> mergedVersionId;  // a merged model (full runs; LoRA runs exporting gguf-f16)
    // What "Chat with it" opens: the merged model when there is one (an adapter alone cannot be loaded).
    std::optional<store::Id> chatVersionId() const { return mergedVersionId ? mergedVersionId : outputVersionId; }
    State state = State::queued;
    QString status;                    // the child's latest progress line
    QStringList stderrTail;            // last 20 stderr lines
    QString trainingOn;                // the child's "training on the GPU: ..." / "training on the CPU: <why>" line
    int64_t step = 0, totalSteps = 0;
    double elapsedS = 0;
    int exitCode = -1;
    bool isFinal() const { return state == State::stopped || state == State::finished || state == State::failed; }
  };

  explicit RunQueue(AppContext& ctx, QObject* parent = nullptr);
  ~RunQueue() override;

  // hearth-cli: $HEARTH_CLI, else beside this program, else ../app/hearth-cli (a build tree), else PATH.
  static QString findCli();
  QString cliPath() const { return m_cli; }
  void setCliPath(const QString& path) { m_cli = path; }

  // Queues a run of the YAML file; returns its job id. Starts it at once when nothing runs.
  int enqueue(const QString& configPath, const QString& name, std::optional<store::Id> baseVersionId = {});
  // Stop: SIGINT (checkpoint, resumable); a queued job is dropped as stopped.
  void stop(int jobId);
  // Pause: SIGINT too; the job shows paused and can be resumed.
  void pause(int jobId);
  // Queues `hearth-cli train --resume RUN_ID` for a paused or stopped job with a known run id.
  bool resume(int jobId);

  AppContext& context() { return m_ctx; }
  const std::vector<Job>& jobs() const { return m_jobs; }
  const Job* job(int jobId) const;
  bool busy() const { return m_process != nullptr; }

 signals:
  void jobAdded(int jobId);
  void jobChanged(int jobId);
  void jobFinished(int jobId);  // reached finished, stopped, paused or failed

 private:
  Job* find(int jobId);
  void startNext();
  void onStdout();
  void onStderr();
  void onFinished(int exitCode, QProcess::ExitStatus status);
  void lookForRunId();
  void interrupt(int jobId, State next);

  AppContext& m_ctx;
  QString m_cli;
  std::vector<Job> m_jobs;
  int m_nextId = 1;
  QProcess* m_process = nullptr;
  int m_current = 0;
  QByteArray m_outBuf, m_errBuf;
  QStringList m_stdoutLines;
  QTimer m_runIdTimer;
};

}  // namespace hearth::ui
