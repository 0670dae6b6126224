/* The program's identity for QSettings and the desktop (names and the window icon's theme name),
 *
 * and where its resources (example configs, icons) are found at run time.
 *
 * Non-obvious choice: the desktop file name is set too, so Wayland compositors match the window with
 * installers/hearth.desktop and show its icon.
 */
#include "settings.h"

#include <QDir>
#include <QFileInfo>
#include <QGuiApplication>

namespace hearth::ui {

void setApplicationIdentity() {
  QCoreApplication::setOrganizationName(QStringLiteral("Hearth"));
  QCoreApplication::setApplicationName(QStringLiteral("hearth"));
  QGuiApplication::setApplicationDisplayName(QStringLiteral("Hearth"));
  QGuiApplication::setDesktopFileName(QStringLiteral("hearth"));
}

QStringList resourceFolders() {
  QStringList out;
  const QString env = qEnvironmentVariable("HEARTH_RESOURCES");
  if (!env.isEmpty()) out << env;
  QDir dir(QCoreApplication::applicationDirPath());
  for (int up = 0; up < 5; ++up) {
    const QString candidate = dir.filePath(QStringLiteral("resources"));
    // The source tree's resources/ (a build folder sits inside or beside the checkout).
    if (QFileInfo::exists(QDir(candidate).filePath(QStringLiteral("examples"))) ||
        QFileInfo::exists(QDir(candidate).filePath(QStringLiteral("icons")))) {
      out << QFileInfo(candidate).canonicalFilePath();
      break;
    }
    if (!dir.cdUp()) break;
  }
  out << QDir::cleanPath(QCoreApplication::applicationDirPath() + QStringLiteral("/../share/hearth"));
  return out;
}

QString findResource(const QString& relative) {
  for (const QString& folder : resourceFolders()) {
    const QString path = QDir(folder).filePath(relative);
    if (QFileInfo::exists(path)) return path;
  }
  return {};
}

}  // namespace hearth::ui
