// `pcr report --queue URL`: the result of a whole build that several machines ran from
// one queue (`pcr run --queue`), read from Redis once the build is over.

#include <pcr/queue/redis.hpp>
#include <pcr/session/run.hpp>
#include <pcr/util/duration.hpp>
#include <pcr/util/escape.hpp>
#include <pcr/util/io.hpp>
#include <pcr/util/text.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <thread>

namespace pcr::session {

namespace {

// JUnit XML of the build: a testsuite per step, a testcase per item, with the machine
// that ran it; a failed item carries its output's tail.
std::string junit_of(const queue::Build& b, const std::string& name) {
  std::map<std::string, std::vector<const queue::ItemResult*>> steps;
  for (const auto& i : b.items) steps[i.step].push_back(&i);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"{}\">\n", util::xml_escape(name));
  for (const auto& [step, items] : steps) {
    std::size_t failures = 0, skipped = 0;
    for (const auto* i : items) failures += i->status == "failed", skipped += i->status == "not run";
    out += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n", util::xml_escape(step),
                       items.size(), failures, skipped);
    for (const auto* i : items) {
      out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"", util::xml_escape(step),
                         util::xml_escape(i->name.empty() ? i->item : i->name), static_cast<double>(i->duration_ms) / 1000);
      if (i->status == "passed" || i->status == "flaky") {
        out += fmt::format("><system-out>{}</system-out></testcase>\n",
                           util::xml_escape(fmt::format("ran on {}{}", i->machine,
                                                        i->tries > 0 ? fmt::format(", passed after {} failed attempt(s)", i->tries) : "")));
      } else if (i->status == "failed") {
        out += fmt::format("><failure message=\"failed on {}\">{}</failure></testcase>\n", util::xml_escape(i->machine),
                           util::xml_escape(util::valid_utf8(i->tail)));
      } else {
        out += "><skipped message=\"no machine ran it\"/></testcase>\n";
      }
    }
    out += "  </testsuite>\n";
  }
  return out + "</testsuites>\n";
}

// The build as one JSON document: every item with its step, status, machine, duration,
// failed attempts requeued, and a failed item's output tail.
std::string json_of(const queue::Build& b, const std::string& name) {
  nlohmann::ordered_json items = nlohmann::ordered_json::array();
  for (const auto& i : b.items)
    items.push_back({{"step", i.step},
                     {"item", i.item},
                     {"name", i.name.empty() ? i.item : i.name},
                     {"status", i.status},
                     {"machine", i.machine},
                     {"duration_ms", i.duration_ms},
                     {"requeued", i.tries},
                     {"tail", i.tail}});
  nlohmann::ordered_json j = {{"build", name}, {"finished", b.finished}, {"machines_alive", b.machines_alive},
                              {"items", items}};
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// A self-contained HTML page: a table per step, failed items first, with their output.
std::string html_of(const queue::Build& b, const std::string& name, const std::string& summary) {
  using util::html_escape;
  std::map<std::string, std::vector<const queue::ItemResult*>> steps;
  for (const auto& i : b.items) steps[i.step].push_back(&i);
  std::string out = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
      "<title>pcr build {0}</title>\n<style>body{{font:14px sans-serif;margin:2em}}table{{border-collapse:collapse}}"
      "td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}.failed{{background:#fdd}}.passed{{background:#dfd}}"
      ".flaky{{background:#ffd}}pre{{margin:0;white-space:pre-wrap}}</style></head><body>\n<h1>build {0}</h1>\n<p>{1}</p>\n",
      html_escape(name), html_escape(summary));
  for (auto& [step, items] : steps) {
    std::stable_sort(items.begin(), items.end(), [](const auto* a, const auto* c) {
      return (a->status == "failed") > (c->status == "failed");
    });
    out += fmt::format("<h2>{}</h2>\n<table><tr><th>item</th><th>status</th><th>machine</th><th>time</th></tr>\n",
                       html_escape(step));
    for (const auto* i : items) {
      const std::string css = i->status == "failed" ? "failed" : i->tries > 0 ? "flaky" : i->status == "passed" ? "passed" : "";
      out += fmt::format("<tr class=\"{}\"><td>{}</td><td>{}{}</td><td>{}</td><td>{:.1f} s</td></tr>\n", css,
                         html_escape(i->name.empty() ? i->item : i->name), html_escape(i->status),
                         i->tries > 0 ? fmt::format(" (after {} failed)", i->tries) : "", html_escape(i->machine),
                         static_cast<double>(i->duration_ms) / 1000);
      if (!i->tail.empty())
        out += fmt::format("<tr class=\"{}\"><td colspan=\"4\"><pre>{}</pre></td></tr>\n", css,
                           html_escape(util::valid_utf8(i->tail)));
    }
    out += "</table>\n";
  }
  return out + "</body></html>\n";
}

}  // namespace

int report_queue(const ReportFlags& f) {
  auto url = queue::parse_url(f.queue);
  if (!url) {
    std::cerr << fmt::format("pcr report: --queue: {}\n", url.error());
    return k_exit_usage;
  }
  auto timeout = util::parse_duration(f.timeout);
  if (!timeout) {
    std::cerr << fmt::format("pcr report: --timeout: {}\n", timeout.error());
    return k_exit_usage;
  }
  const auto deadline = std::chrono::steady_clock::now() + *timeout;
  queue::Build b;
  bool said_waiting = false;
  for (;;) {
    try {
      b = queue::read_build(*url, std::chrono::milliseconds(5000));
    } catch (const std::exception& e) {
      std::cerr << fmt::format("pcr report: error: {}\n", util::visible(e.what()));
      return k_exit_internal;
    }
    if (b.finished || b.machines_alive.empty() || std::chrono::steady_clock::now() >= deadline) break;
    if (!said_waiting)
      std::cerr << fmt::format("pcr report: waiting for {} machine(s) still running {}…\n", b.machines_alive.size(),
                               url->shown);
    said_waiting = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::size_t passed = 0, failed = 0, flaky = 0, not_run = 0;
  std::set<std::string> machines;
  for (const auto& i : b.items) {
    if (!i.machine.empty()) machines.insert(i.machine);
    if (i.status == "failed") ++failed;
    else if (i.status == "not run") ++not_run;
    else ++passed, flaky += i.tries > 0 || i.status == "flaky";
  }
  const std::string summary =
      fmt::format("{} item(s) — {} passed{}, {} failed{} — on {} machine(s)", b.items.size(), passed,
                  flaky ? fmt::format(" ({} after a retry)", flaky) : "", failed,
                  not_run ? fmt::format(", {} not run", not_run) : "", machines.size());
  std::cout << fmt::format("build {}: {}\n", url->name, summary);
  std::map<std::string, std::size_t> per_machine;
  for (const auto& i : b.items)
    if (!i.machine.empty()) ++per_machine[i.machine];
  std::string shares;
  for (const auto& [m, n] : per_machine) shares += fmt::format("{}{} {}", shares.empty() ? "" : ", ", util::visible(m), n);
  if (!shares.empty()) std::cout << "  items by machine: " << shares << "\n";
  if (b.items.empty()) std::cout << "  no machine has filled this build's queue (is the NAME right?)\n";
  for (const auto& i : b.items) {
    if (i.status != "failed" && i.status != "not run") continue;
    std::cout << fmt::format("  ✗ {} › {}: {}\n", util::visible(i.step), util::visible(i.name.empty() ? i.item : i.name),
                             i.status == "failed" ? "failed on " + i.machine : "not run (no machine took it)");
    for (const auto& l : util::split_lines(i.tail)) std::cout << "    │ " << util::visible(l) << "\n";
  }
  if (!b.finished && !b.machines_alive.empty())
    std::cout << fmt::format("  still running after {} on: ", f.timeout) << fmt::format("{}\n", fmt::join(b.machines_alive, ", "));
  for (const auto& [path, text] : {std::pair{f.junit, f.junit.empty() ? "" : junit_of(b, url->name)},
                                    std::pair{f.json, f.json.empty() ? "" : json_of(b, url->name)},
                                    std::pair{f.html, f.html.empty() ? "" : html_of(b, url->name, summary)}}) {
    if (path.empty()) continue;
    const std::string error = util::replace_file(path, text, 0644);
    if (!error.empty()) {
      std::cerr << fmt::format("pcr report: error: {}\n", error);
      return k_exit_internal;
    }
  }
  std::cout << std::flush;
  if (!std::cout) return k_exit_internal;
  return b.finished && failed == 0 && not_run == 0 && !b.items.empty() ? 0 : 1;
}

}  // namespace pcr::session
