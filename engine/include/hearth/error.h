/* Errors as values for every public engine function.
 *
 * Non-obvious choice: a small local `Expected<T>` instead of std::expected. gcc 12 has std::expected in
 * C++23 mode, but clang 14 (our libFuzzer compiler) and nvcc (CUDA sources) cannot use libstdc++'s
 * <expected>; one type that compiles everywhere keeps the headers shared by all three.
 *
 * Thread-safety: plain values, no shared state.
 */
#pragma once

#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace hearth {

enum class ErrorCode {
  invalid_argument,  // the caller passed something unusable (a bad option, an empty path)
  io,                // the operating system refused (file missing, permission, disk full)
  format,            // a file's contents are malformed (truncated, wrong magic, lying offsets)
  unsupported,       // well-formed but not supported (an unknown architecture or tensor type)
  out_of_range,      // a value outside its allowed range (a token id past the vocabulary)
  template_error,    // a chat template failed to parse or raised while rendering
  not_found,         // a named thing is absent (a tensor, a metadata key, a tokenizer file)
  cancelled,         // the caller asked to stop
  internal,          // a bug in Hearth: please report it
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;  // what went wrong, naming the file and the place
  std::string hint;     // optional: what the user can do about it

  // "message (hint)" for one-line reports.
  std::string to_string() const;
};

// The failure side of Expected, as std::unexpected.
struct Unexpected {
  Error error;
};

inline Unexpected make_error(ErrorCode code, std::string message, std::string hint = {}) {
  return Unexpected{Error{code, std::move(message), std::move(hint)}};
}

// Holds a T or an Error. value() on an error aborts (a bug in the caller), as dereferencing an empty
// std::expected is undefined.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(const T& v) : m_v(std::in_place_index<0>, v) {}
  Expected(T&& v) : m_v(std::in_place_index<0>, std::move(v)) {}
  template <class U, class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                              !std::is_same_v<std::decay_t<U>, Expected> &&
                                              !std::is_same_v<std::decay_t<U>, Unexpected> &&
                                              !std::is_same_v<std::decay_t<U>, T>>>
  Expected(U&& v) : m_v(std::in_place_index<0>, T(std::forward<U>(v))) {}
  Expected(Unexpected u) : m_v(std::in_place_index<1>, std::move(u.error)) {}

  bool has_value() const { return m_v.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { check(); return std::get<0>(m_v); }
  const T& value() const& { check(); return std::get<0>(m_v); }
  T&& value() && { check(); return std::get<0>(std::move(m_v)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(m_v); }
  Error& error() { return std::get<1>(m_v); }

 private:
  void check() const {
    if (m_v.index() != 0) std::abort();
  }
  std::variant<T, Error> m_v;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Unexpected u) : m_err(std::move(u.error)), m_ok(false) {}
  bool has_value() const { return m_ok; }
  explicit operator bool() const { return m_ok; }
  void value() const {
    if (!m_ok) std::abort();
  }
  const Error& error() const { return m_err; }
  Error& error() { return m_err; }

 private:
  Error m_err;
  bool m_ok = true;
};

// Propagate an error from an Expected expression: HEARTH_TRY(auto x, f());
#define HEARTH_CONCAT_INNER(a, b) a##b
#define HEARTH_CONCAT(a, b) HEARTH_CONCAT_INNER(a, b)
#define HEARTH_TRY(decl, expr)                                                   \
  auto HEARTH_CONCAT(_hearth_r_, __LINE__) = (expr);                             \
  if (!HEARTH_CONCAT(_hearth_r_, __LINE__))                                      \
    return ::hearth::Unexpected{HEARTH_CONCAT(_hearth_r_, __LINE__).error()};    \
  decl = std::move(*HEARTH_CONCAT(_hearth_r_, __LINE__))
#define HEARTH_TRY_VOID(expr)                                                    \
  do {                                                                           \
    auto _hearth_rv = (expr);                                                    \
    if (!_hearth_rv) return ::hearth::Unexpected{_hearth_rv.error()};            \
  } while (0)

}  // namespace hearth
