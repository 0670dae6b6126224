/* Names and one-line rendering of engine errors. */
#include "hearth/error.h"

namespace hearth {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid argument";
    case ErrorCode::io: return "i/o error";
    case ErrorCode::format: return "format error";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::out_of_range: return "out of range";
    case ErrorCode::template_error: return "template error";
    case ErrorCode::not_found: return "not found";
    case ErrorCode::cancelled: return "cancelled";
    case ErrorCode::internal: return "internal error";
  }
  return "error";
}

std::string Error::to_string() const {
  std::string s = message;
  if (!hint.empty()) s += " (" + hint + ")";
  return s;
}

}  // namespace hearth
