/* JSON forms of the store's records: used for event payloads, run export/import and `--json` output.
 *
 * Non-obvious choice: fields that already hold JSON text (a run's config, metric summaries, sampling
 * parameters) are embedded as JSON values, not as escaped strings, so an export reads naturally; text
 * that fails to parse is embedded as a string instead of being dropped.
 */
#pragma once

#include <nlohmann/json.hpp>

#include "hearth/store/records.h"

namespace hearth::store {

nlohmann::json toJson(const Model& m);
nlohmann::json toJson(const ModelVersion& v);
nlohmann::json toJson(const Dataset& d);
nlohmann::json toJson(const Experiment& e);
nlohmann::json toJson(const Run& r);
nlohmann::json toJson(const Conversation& c);
nlohmann::json toJson(const Message& m);
nlohmann::json toJson(const Prompt& p);
nlohmann::json toJson(const Event& e);

// Parses JSON text, or wraps it as a JSON string when it is not valid JSON.
nlohmann::json embedJson(const std::string& text);

}  // namespace hearth::store
