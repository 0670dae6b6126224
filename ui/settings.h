/* Setting<T>: one QSettings entry declared where it is used, its key and default side by side
 * (Tiled's habit), e.g. `static const Setting<int> fitContext{"models/fitContext", 4096};`.
 *
 * Non-obvious choice: every get() and set() opens a fresh QSettings: it is cheap (Qt caches the file
 * per thread) and keeps no global object alive, so tests that point XDG_CONFIG_HOME elsewhere see
 * their own files. Organisation and application names are set once in main() (and by tests).
 */
#pragma once

#include <QSettings>
#include <QString>
#include <QStringList>
#include <QVariant>

namespace hearth::ui {

template <class T>
struct Setting {
  const char* key;
  T fallback;

  T get() const {
    QSettings s;
    QVariant v = s.value(QString::fromLatin1(key));
    if (!v.isValid() || !v.canConvert<T>()) return fallback;
    return v.value<T>();
  }
  void set(const T& value) const {
    QSettings s;
    s.setValue(QString::fromLatin1(key), QVariant::fromValue(value));
  }
};

// The organisation / application names QSettings files are stored under (~/.config/Hearth/hearth.conf).
void setApplicationIdentity();

// Folders that may hold Hearth's resources (examples/, icons/), best first: $HEARTH_RESOURCES, the
// source tree's resources/ above the program (a build tree), ../share/hearth beside it (installed).
QStringList resourceFolders();
// The first existing `relative` path under resourceFolders(); empty when none.
QString findResource(const QString& relative);

}  // namespace hearth::ui
