// Choice fields: enums read and written as words. choice_names(E{}) (an overload beside each enum,
// found by argument-dependent lookup) lists each enumerator's word in declaration order; readers
// parse a word once, at load, and the code then compares enumerators. Stored files keep the words.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ablate {

template <class E>
concept Choice = std::is_enum_v<E> && requires { choice_names(E{}); };

template <Choice E>
constexpr const char* name_of(E e) {
  return choice_names(E{})[static_cast<std::size_t>(e)];
}

template <Choice E>
constexpr std::optional<E> parse_choice(std::string_view word) {
  const auto names = choice_names(E{});
  for (std::size_t i = 0; i < names.size(); ++i)
    if (word == names[i]) return static_cast<E>(i);
  return std::nullopt;
}

template <Choice E>
std::vector<std::string> choice_words() {
  const auto names = choice_names(E{});
  return {names.begin(), names.end()};
}

}  // namespace ablate
