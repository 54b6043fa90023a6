// libFuzzer target: the placeholder parser and expander. The first byte picks the job's
// context; the rest is the command text.
#include <pcr/pipeline/template.hpp>
#include <pcr/util/assert.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

using namespace pcr::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned pick = data[0];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<Template::Error> errors;
  Template t = Template::parse(text, errors, {"project", "compose", "exec"});
  for (const auto& e : errors) PCR_ASSERT(e.offset <= text.size());
  if (!errors.empty()) return 0;
  JobContext ctx;
  ctx.number = pick & 3;  // 0: a plan, where {n} stays as written
  ctx.job = 1 + (pick >> 2 & 3);
  ctx.total = 4;
  ctx.run_id = "r1";
  ctx.step = "s";
  if (pick & 16) ctx.items = {"a b", "it's", "", text.substr(0, 8)};
  if (pick & 32)
    ctx.resolve = [](const std::string& name, const std::string& arg) -> std::optional<std::string> {
      if (name == "exec" && arg.empty()) return std::nullopt;
      return name + ":" + arg;
    };
  (void)t.expand(ctx);
  return 0;
}
