/* Names of the trainer's enums as they appear in YAML configs, the project store and the CLI.
 * Parsing is case-sensitive and exact, so a stored config reads back to the same values.
 */
#include <string>

#include "hearth/trainer/config.h"
#include "hearth/trainer/train-model.h"

namespace hearth::train {

const char* method_name(Method m) {
  switch (m) {
    case Method::lora: return "lora";
    case Method::full: return "full";
    case Method::pretrain: return "pretrain";
  }
  return "?";
}

Expected<Method> method_from_name(const std::string& s) {
  for (Method m : {Method::lora, Method::full, Method::pretrain})
    if (s == method_name(m)) return m;
  return make_error(ErrorCode::invalid_argument, "unknown method '" + s + "'", "use lora, full or pretrain");
}

const char* data_format_name(DataFormat f) {
  switch (f) {
    case DataFormat::auto_detect: return "auto";
    case DataFormat::alpaca: return "alpaca";
    case DataFormat::sharegpt: return "sharegpt";
    case DataFormat::messages: return "messages";
    case DataFormat::text: return "text";
  }
  return "?";
}

Expected<DataFormat> data_format_from_name(const std::string& s) {
  for (DataFormat f : {DataFormat::auto_detect, DataFormat::alpaca, DataFormat::sharegpt, DataFormat::messages,
                       DataFormat::text})
    if (s == data_format_name(f)) return f;
  return make_error(ErrorCode::invalid_argument, "unknown data format '" + s + "'",
                    "use auto, alpaca, sharegpt, messages or text");
}

const char* schedule_name(ScheduleKind s) {
  switch (s) {
    case ScheduleKind::constant: return "constant";
    case ScheduleKind::linear: return "linear";
    case ScheduleKind::cosine: return "cosine";
  }
  return "?";
}

Expected<ScheduleKind> schedule_from_name(const std::string& s) {
  for (ScheduleKind k : {ScheduleKind::constant, ScheduleKind::linear, ScheduleKind::cosine})
    if (s == schedule_name(k)) return k;
  return make_error(ErrorCode::invalid_argument, "unknown schedule '" + s + "'", "use constant, linear or cosine");
}

}  // namespace hearth::train
