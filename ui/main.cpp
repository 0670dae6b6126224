/* `hearth [PROJECT_FILE]`: the desktop program. Opens PROJECT_FILE, else the project used last
 * (QSettings), else the default project (created on first start), in the main window.
 *
 * Non-obvious choice: File > Open project builds a fresh AppContext and window and only then closes
 * the old pair, so every page starts from the new project's state instead of each page learning to
 * swap connections; the last project is remembered only once it has opened.
 */
#include <QApplication>
#include <QCommandLineParser>
#include <QFileInfo>
#include <QTimer>
#include <memory>

#include "app-context.h"
#include "hearth/store/project.h"
#include "main-window.h"
#include "settings.h"

namespace {

const hearth::ui::Setting<QString> LAST_PROJECT{"project/last", QString()};

struct Session {
  std::unique_ptr<hearth::ui::AppContext> ctx;
  std::unique_ptr<hearth::ui::MainWindow> window;
};

void open(Session& session, const QString& path) {
  Session next;
  next.ctx = std::make_unique<hearth::ui::AppContext>(path);
  next.window = std::make_unique<hearth::ui::MainWindow>(*next.ctx);
  if (next.ctx->project()) LAST_PROJECT.set(next.ctx->projectPath());
  QObject::connect(next.window.get(), &hearth::ui::MainWindow::openProjectRequested, next.window.get(),
                   [&session](const QString& other) {
                     // Queued: the old window is still inside its own slot.
                     QTimer::singleShot(0, [&session, other] { open(session, other); });
                   });
  next.window->show();
  if (session.window) session.window->close();
  session.window.reset();
  session.ctx.reset();
  session = std::move(next);
}

}  // namespace

int main(int argc, char** argv) {
  QGuiApplication::setHighDpiScaleFactorRoundingPolicy(Qt::HighDpiScaleFactorRoundingPolicy::PassThrough);
  QApplication app(argc, argv);
  hearth::ui::setApplicationIdentity();

  QCommandLineParser parser;
  parser.setApplicationDescription(QObject::tr("Hearth: chat with, fine-tune and compare local language models."));
  parser.addHelpOption();
  parser.addPositionalArgument(QStringLiteral("PROJECT_FILE"),
                               QObject::tr("The project to open (default: the last one, or %1)")
                                   .arg(QString::fromStdString(hearth::store::Project::defaultPath())),
                               QStringLiteral("[PROJECT_FILE]"));
  parser.process(app);

  QString path;
  if (!parser.positionalArguments().isEmpty()) path = parser.positionalArguments().first();
  if (path.isEmpty()) {
    const QString last = LAST_PROJECT.get();
    if (!last.isEmpty() && QFileInfo::exists(last)) path = last;
  }
  if (path.isEmpty()) path = QString::fromStdString(hearth::store::Project::defaultPath());

  Session session;
  open(session, path);
  const int rc = app.exec();
  session.window.reset();
  session.ctx.reset();
  return rc;
}
