#pragma once

#include <string>
#include <utility>
#include <variant>

namespace pcr::util {

// A value or an error message. util/ never throws: it returns one of these, and the layer
// above decides whether a failure is the user's (a load error) or the machine's.
template <typename T>
class Expected {
 public:
  Expected(T value) : m_data(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  static Expected failure(std::string message) {
    return Expected(std::in_place_index<1>, std::move(message));
  }

  explicit operator bool() const { return m_data.index() == 0; }
  const T& operator*() const { return std::get<0>(m_data); }
  T& operator*() { return std::get<0>(m_data); }
  const T* operator->() const { return &std::get<0>(m_data); }
  const std::string& error() const { return std::get<1>(m_data); }

 private:
  template <std::size_t I>
  Expected(std::in_place_index_t<I> tag, std::string message) : m_data(tag, std::move(message)) {}
  std::variant<T, std::string> m_data;
};

}  // namespace pcr::util
