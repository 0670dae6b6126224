/* Helpers shared by the Qt tests: registering a model file in a project as the Models page would,
 * without going through the page (the tests of other pages need a model, not the import worker).
 */
#pragma once

#include <QtGlobal>
#include <string>

#include "hearth/store/project.h"

namespace hearth::test {

// Adds `path` as a GGUF model named `name` with one base version labelled `label`; returns the
// version id. Aborts the test on a store error (a broken fixture, not a finding).
inline store::Id importGguf(store::Project& p, const std::string& path, const std::string& name,
                            const std::string& label = "base") {
  store::Model m;
  m.name = name;
  m.path = path;
  m.format = "gguf";
  auto id = p.addModel(m);
  if (!id) qFatal("addModel: %s", id.error().to_string().c_str());
  store::ModelVersion v;
  v.modelId = *id;
  v.label = label;
  v.path = path;
  auto vid = p.addModelVersion(v);
  if (!vid) qFatal("addModelVersion: %s", vid.error().to_string().c_str());
  return *vid;
}

}  // namespace hearth::test
