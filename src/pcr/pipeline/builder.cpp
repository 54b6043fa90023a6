#include <pcr/pipeline/builder.hpp>
#include <pcr/pipeline/template.hpp>

#include <fmt/format.h>

#include <stdexcept>

namespace pcr::pipeline {

Command command(const std::string& text) { return command(text, {}); }

Command command(const std::string& text, const std::vector<std::string>& extra) {
  std::vector<Template::Error> errors;
  Template t = Template::parse(text, errors, extra);
  if (!errors.empty())
    throw std::invalid_argument(fmt::format("command `{}`, at offset {}: {}", text, errors[0].offset, errors[0].message));
  return make_command(std::move(t));
}

Step run_step(std::string name, Command cmd) {
  Step s;
  s.name = std::move(name);
  s.commands.push_back(std::move(cmd));
  return s;
}

Step parallel_step(std::string name, unsigned n, Command cmd) {
  Step s = run_step(std::move(name), std::move(cmd));
  s.form = Form::parallel;
  s.parallel = n;
  return s;
}

Step commands_step(std::string name, std::vector<Command> cmds) {
  Step s;
  s.name = std::move(name);
  s.form = Form::commands;
  s.commands = std::move(cmds);
  return s;
}

Step for_each_step(std::string name, std::vector<std::string> items, Command cmd, unsigned workers,
                   unsigned batch) {
  Step s = run_step(std::move(name), std::move(cmd));
  s.form = Form::for_each;
  s.for_each.source = ForEach::Source::list;
  s.for_each.list = std::move(items);
  s.workers = workers;
  s.batch = batch;
  return s;
}

}  // namespace pcr::pipeline
