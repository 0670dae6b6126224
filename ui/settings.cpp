/* The program's identity for QSettings and the desktop (names and the window icon's theme name).
 *
 * Non-obvious choice: the desktop file name is set too, so Wayland compositors match the window with
 * installers/hearth.desktop and show its icon.
 */
#include "settings.h"

#include <QGuiApplication>

namespace hearth::ui {

void setApplicationIdentity() {
  QCoreApplication::setOrganizationName(QStringLiteral("Hearth"));
  QCoreApplication::setApplicationName(QStringLiteral("hearth"));
  QGuiApplication::setApplicationDisplayName(QStringLiteral("Hearth"));
  QGuiApplication::setDesktopFileName(QStringLiteral("hearth"));
}

}  // namespace hearth::ui
