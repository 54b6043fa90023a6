#pragma once

#include <pcr/pipeline/model.hpp>
#include <pcr/util/expected.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pcr::pipeline {

// A command with placeholders, parsed once at load time:
//   {n} {job} {total} {items} {run_id}   — see JobContext; {items} is shell-quoted
//   {{ and }}                            — literal braces
//   ${...}                               — left to the shell untouched
class Template {
 public:
  struct Error {
    size_t offset;  // into the source text
    std::string message;
  };

  // Parse `text`; an unknown placeholder or unclosed brace is an error at its offset.
  // `extra` names placeholders an extension provides (the first word: "exec" for
  // `{exec web}`); they are expanded through JobContext::resolve.
  // `check_arg`, when set, is asked about each extension placeholder's argument and
  // returns what is wrong with it ("" when nothing): `{exec ap}` names no service.
  using ArgCheck = std::function<std::string(const std::string& name, const std::string& arg)>;
  static Template parse(std::string_view text, std::vector<Error>& errors,
                        const std::vector<std::string>& extra = {}, const ArgCheck& check_arg = nullptr);

  // The command for `ctx`. With `ctx.number == 0` (a plan), `{n}` stays as written.
  std::string expand(const JobContext& ctx) const;

  const std::string& source() const { return m_source; }

  // Names a placeholder may have.
  static const std::vector<std::string>& names();

 private:
  struct Part {
    bool placeholder;
    std::string text;  // literal text, or the placeholder's name
    std::string arg;   // what follows the name inside the braces
  };
  std::string m_source;
  std::vector<Part> m_parts;
};

// A Command that expands `t`.
Command make_command(Template t);

}  // namespace pcr::pipeline
