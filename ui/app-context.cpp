/* AppContext: opens the project the window works on and owns the window's power sampler.
 *
 * Non-obvious choice: the project file's folder is created before opening (the default project lives
 * under ~/.local/share/hearth, which does not exist on a first start), and Project::open with
 * create=true is used rather than create(), so an existing project is simply opened.
 */
#include "app-context.h"

#include <QDir>
#include <QFileInfo>

#include "hearth/telemetry/sampler.h"

namespace hearth::ui {

AppContext::AppContext(const QString& projectPath, QObject* parent) : QObject(parent), m_path(projectPath) {
  try {
    if (m_path.isEmpty()) {
      m_error = tr("No project file was given.");
      return;
    }
    QFileInfo info(m_path);
    m_path = info.absoluteFilePath();
    if (!QDir().mkpath(info.absolutePath())) {
      m_error = tr("Cannot create the folder %1 for the project.").arg(info.absolutePath());
      return;
    }
    store::OpenOptions options;
    options.create = true;
    auto project = store::Project::open(m_path.toStdString(), options);
    if (!project) {
      m_error = QString::fromStdString(project.error().to_string());
      return;
    }
    m_project = std::make_unique<store::Project>(std::move(*project));
  } catch (const std::exception& e) {
    m_error = tr("Opening %1 failed: %2").arg(m_path, QString::fromUtf8(e.what()));
    m_project.reset();
  }
}

AppContext::~AppContext() {
  if (m_sampler) m_sampler->stop();
}

telemetry::Sampler* AppContext::sampler() {
  if (m_samplerTried) return m_sampler.get();
  m_samplerTried = true;
  try {
    telemetry::TelemetryOptions options;
    options.intervalMs = 1000;
    auto s = telemetry::makeSampler(options);
    if (!s) {
      m_samplerError = QString::fromStdString(s.error().to_string());
      return nullptr;
    }
    m_sampler = std::move(*s);
    m_sampler->start();
  } catch (const std::exception& e) {
    m_samplerError = QString::fromUtf8(e.what());
    m_sampler.reset();
  }
  return m_sampler.get();
}

}  // namespace hearth::ui
