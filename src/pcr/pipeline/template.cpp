#include <pcr/pipeline/template.hpp>
#include <pcr/util/shell.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace pcr::pipeline {

const std::vector<std::string>& Template::names() {
  static const std::vector<std::string> k_names = {"n", "job", "total", "items", "run_id"};
  return k_names;
}

Template Template::parse(std::string_view text, std::vector<Error>& errors, const std::vector<std::string>& extra,
                         const ArgCheck& check_arg) {
  Template t;
  t.m_source = std::string(text);
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) t.m_parts.push_back({false, std::move(literal), ""}), literal.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t close = text.find('}', i + 2);
      size_t end = close == std::string_view::npos ? text.size() : close + 1;
      literal += text.substr(i, end - i);  // ${VAR} belongs to the shell
      i = end - 1;
    } else if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{', ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      literal += '}', ++i;
    } else if (c == '{') {
      size_t close = text.find('}', i + 1);
      if (close == std::string_view::npos) {
        errors.push_back({i, "unclosed '{' in command (write '{{' for a literal brace)"});
        break;
      }
      std::string inside(text.substr(i + 1, close - i - 1));
      size_t space = inside.find(' ');
      std::string name = inside.substr(0, space);
      std::string arg = space == std::string::npos ? "" : inside.substr(space + 1);
      std::vector<std::string> known = names();
      known.insert(known.end(), extra.begin(), extra.end());
      const bool is_extra = std::find(extra.begin(), extra.end(), name) != extra.end();
      if (std::find(known.begin(), known.end(), name) == known.end() || (!arg.empty() && !is_extra)) {
        std::string hint = util::did_you_mean(inside, known);
        std::string list;
        for (const auto& k : known) list += fmt::format(" {{{}}}", k);
        errors.push_back({i, fmt::format("unknown placeholder '{{{}}}'{}; known:{} (write '{{{{' for a literal brace)",
                                         inside, hint.empty() ? "" : fmt::format(" (did you mean '{{{}}}'?)", hint),
                                         list)});
      } else if (is_extra && check_arg) {
        if (std::string why = check_arg(name, arg); !why.empty()) errors.push_back({i, std::move(why)});
      }
      flush();
      t.m_parts.push_back({true, std::move(name), std::move(arg)});
      i = close;
    } else {
      literal += c;
    }
  }
  flush();
  return t;
}

std::string Template::expand(const JobContext& ctx) const {
  std::string out;
  for (const auto& part : m_parts) {
    if (!part.placeholder) {
      out += part.text;
    } else if (part.text == "n") {
      out += ctx.number == 0 ? std::string("{n}") : std::to_string(ctx.number);
    } else if (part.text == "job") {
      out += std::to_string(ctx.job);
    } else if (part.text == "total") {
      out += std::to_string(ctx.total);
    } else if (part.text == "items") {
      out += util::shell_join(ctx.items);
    } else if (part.text == "run_id") {
      out += ctx.run_id;
    } else if (ctx.resolve) {
      if (auto value = ctx.resolve(part.text, part.arg)) out += *value;
    }
  }
  return out;
}

Command make_command(Template t) {
  return [t = std::move(t)](const JobContext& ctx) { return t.expand(ctx); };
}

}  // namespace pcr::pipeline
