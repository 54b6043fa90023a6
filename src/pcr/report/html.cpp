#include <pcr/report/format.hpp>
#include <pcr/report/html.hpp>
#include <pcr/util/escape.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace pcr::report {

using pipeline::JobKind;
using pipeline::JobStatus;
using pipeline::StepOutcome;
using util::format_duration;
using util::html_escape;

namespace {

const char* k_style = R"CSS(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d232a;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.passed{background:#2e9d4f}.failed{background:#d23b3b}.interrupted,.flaky{background:#d9a520}
.skipped,.cancelled{background:#9aa3ad}.retry{background:#f08c2e}.setup,.teardown{background:#4a7fd4}.timeout{background:#7b3fb5}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{font-weight:600;background:#f4f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}pre{background:#f6f8fa;padding:10px;overflow:auto;max-height:420px;border-radius:4px;white-space:pre-wrap}
.timeline{border:1px solid #e3e6ea;border-radius:4px;padding:8px 8px 4px}
.lane{display:flex;align-items:center;height:22px;margin-bottom:4px}
.lane .label{width:220px;flex:none;font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding-right:8px}
.lane .track{position:relative;flex:1;height:18px;background:#f4f6f8;border-radius:3px}
.bar{position:absolute;top:1px;height:16px;border-radius:3px;min-width:2px;opacity:.92;overflow:hidden;white-space:nowrap;color:#fff;font-size:11px;line-height:16px;text-indent:3px}
.bar:hover{opacity:1;outline:2px solid #1d232a}
.axis{display:flex;justify-content:space-between;margin-left:220px;font-size:11px;color:#6b7480}
.legend span{display:inline-block;padding:0 8px;margin-right:6px;border-radius:3px;color:#fff;font-size:12px}
.badge{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
)CSS";

std::string css_class(const JobEntry& j) {
  if (j.kind == JobKind::setup) return j.result.status == JobStatus::passed ? "setup" : "failed";
  if (j.kind == JobKind::teardown) return j.result.status == JobStatus::passed ? "teardown" : "failed";
  const auto& r = j.result;
  if (r.status == JobStatus::passed) return r.flaky ? "flaky" : "passed";
  if (r.status == JobStatus::cancelled) return "cancelled";
  if (r.will_retry) return "retry";
  // A timeout is not a failure like another: the job may be hanging, not wrong.
  return r.status == JobStatus::timed_out || r.status == JobStatus::idle_timeout ? "timeout" : "failed";
}

// What a job is called: its name (what it tests), escaped.
std::string job_label(const JobEntry& j) {
  if (j.kind == JobKind::setup) return fmt::format("setup [n={}]", j.worker);
  if (j.kind == JobKind::teardown) return fmt::format("teardown [n={}]", j.worker);
  return html_escape(j.name.empty() ? j.command : j.name);
}

// An outcome as a number to sort by: the worst first when sorted down.
int outcome_rank(const JobEntry& j) {
  const std::string c = css_class(j);
  return c == "failed" ? 5 : c == "timeout" ? 4 : c == "retry" ? 3 : c == "flaky" ? 2 : c == "cancelled" ? 1 : 0;
}

// The job table of one step: its jobs, or its workers' set-ups and tear-downs. The jobs
// that did not pass first, then the slowest: what a reader looks for.
std::string job_table(const RunRecord& run, size_t s, bool tasks) {
  std::vector<const JobEntry*> rows;
  for (const auto& j : run.jobs)
    if (j.step == s && (j.kind != JobKind::job) == tasks) rows.push_back(&j);
  if (rows.empty()) return "";
  std::stable_sort(rows.begin(), rows.end(), [](const JobEntry* a, const JobEntry* b) {
    const bool a_ok = a->result.status == JobStatus::passed, b_ok = b->result.status == JobStatus::passed;
    if (a_ok != b_ok) return !a_ok;
    return a->result.duration > b->result.duration;
  });
  bool hosts = false, projects = false;
  for (const auto* j : rows) hosts |= !j->host.empty(), projects |= !j->project.empty();
  std::string out = fmt::format("<table class=\"{}\"><tr><th>{}</th><th>worker</th>{}{}<th>outcome</th><th>duration</th>"
                                "<th>command</th></tr>\n",
                                tasks ? "tasks" : "jobs", tasks ? "set-up / tear-down" : "job",
                                hosts ? "<th>host</th>" : "", projects ? "<th>cluster</th>" : "");
  for (const auto* j : rows) {
    out += fmt::format(
        "<tr><td class=\"name\">{}{}{}</td><td class=\"num\">{}</td>{}{}<td data-v=\"{}\"><span class=\"badge {}\">{}</span></td>"
        "<td class=\"num\" data-v=\"{}\">{}</td><td><details><summary>command</summary><code>{}</code></details></td></tr>\n",
        job_label(*j), j->attempt > 0 ? fmt::format(" (attempt {})", j->attempt + 1) : "",
        j->log.empty() ? "" : fmt::format(" <a class=\"log\" href=\"file://{}\">log</a>", html_escape(j->log)), j->worker,
        hosts ? "<td>" + html_escape(j->host) + "</td>" : "", projects ? "<td><code>" + html_escape(j->project) + "</code></td>" : "",
        outcome_rank(*j), css_class(*j), html_escape(describe(j->result, j->attempt)), j->result.duration.count(),
        format_duration(j->result.duration),
        html_escape(j->command));
  }
  return out + "</table>\n";
}

// Sorts a job table by the column clicked (again: the other way), by `data-v` where a
// cell has one (durations in ms, outcomes ranked), else by its text. The page's only
// script, allowed by its hash in the Content-Security-Policy (k_sort_hash, checked by
// the tests): nothing else on the page can run, whatever a job printed.
const char* k_sort_script =
    "document.body.dataset.sortable='1';document.querySelectorAll('table.jobs th,table.tasks th').forEach(function(th,i){th.style.cursor='pointer';th.title='sort';th.addEventListener('click',function(){var t=th.closest('table'),b=t.tBodies[0],rows=Array.from(t.rows).slice(1),up=th.dataset.up!=='1';th.dataset.up=up?'1':'0';rows.sort(function(p,q){var x=p.cells[i].dataset.v||p.cells[i].textContent,y=q.cells[i].dataset.v||q.cells[i].textContent,m=parseFloat(x),n=parseFloat(y),c=(!isNaN(m)&&!isNaN(n))?m-n:x.localeCompare(y);return up?c:-c;});rows.forEach(function(r){b.appendChild(r);});});});";
const char* k_sort_hash = "CB8ZT6uqmQLpCsz0wPWqKmELmX7KTSzEjpeIR5O/J9Q=";

}  // namespace

std::string html_sort_script() { return k_sort_script; }
std::string html_sort_hash() { return k_sort_hash; }

std::string html_report(const RunRecord& run) {
  const auto& res = run.result;
  std::string verdict = res.signal ? "interrupted" : res.exit_code == 0 ? "passed" : "failed";
  std::string verdict_text = res.signal ? interrupted_verdict(res)
                             : res.exit_code == 0 ? "PASSED"
                                                  : "FAILED";
  std::string title = run.info.name.empty() ? "pcr run" : run.info.name;
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  out += fmt::format("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
                     "'unsafe-inline'; script-src 'sha256-{}'\">\n",
                     k_sort_hash);
  out += fmt::format("<title>{} — pcr {}</title><style>{}</style></head><body>\n", html_escape(title),
                     html_escape(run.info.run_id), k_style);
  out += fmt::format("<h1>{}</h1>\n<p><span class=\"verdict {}\" id=\"verdict\">{}</span> in {} · run <code>{}</code> · exit {}</p>\n",
                     html_escape(title), verdict, verdict_text, format_duration(res.duration),
                     html_escape(run.info.run_id), res.exit_code);
  for (const auto& n : run.notes) out += fmt::format("<p class=\"note\">{}</p>\n", html_escape(n));
  if (!run.hosts_down.empty()) {
    out += "<h2>Hosts that did not answer</h2>\n<ul id=\"hosts\">\n";
    for (const auto& h : run.hosts_down) out += fmt::format("<li>{}</li>\n", html_escape(host_down_line(h)));
    out += "</ul>\n";
  }

  // Summary.
  out += "<h2>Steps</h2>\n<table id=\"steps\"><tr><th>step</th><th>outcome</th><th>jobs</th><th>passed</th><th>failed</th><th>flaky</th><th>duration</th></tr>\n";
  for (const auto& s : run.steps) {
    std::string outcome = outcome_name(s.result.outcome);
    out += fmt::format(
        "<tr><td>{}{}</td><td><span class=\"badge {}\">{}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
        s.cleanup ? "cleanup: " : "", html_escape(s.name), outcome, outcome, s.jobs, s.result.passed, s.result.failed,
        s.result.flaky, s.ran ? format_duration(s.result.duration) : "");
  }
  out += "</table>\n";

  // Timeline: one lane per (step, worker).
  long long span = std::max<long long>(1, res.duration.count());
  for (const auto& j : run.jobs) span = std::max<long long>(span, (j.start + j.result.duration).count());
  out += "<h2>Timeline</h2>\n<div class=\"legend\"><span class=\"passed\">passed</span><span class=\"failed\">failed</span>"
         "<span class=\"flaky\">flaky</span><span class=\"retry\">failed, retried</span><span class=\"timeout\">timed out</span>"
         "<span class=\"cancelled\">cancelled</span>"
         "<span class=\"setup\">setup / teardown</span></div>\n<div class=\"timeline\" id=\"timeline\">\n";
  for (size_t s = 0; s < run.steps.size(); ++s) {
    const auto& step = run.steps[s];
    unsigned workers = 0;
    for (const auto& j : run.jobs)
      if (j.step == s) workers = std::max(workers, j.worker);
    for (unsigned w = 1; w <= workers; ++w) {
      // With hosts, the lane's host (hosts, when its worker moved off one that went away).
      std::string hosts;
      for (const auto& j : run.jobs)
        if (j.step == s && j.worker == w && !j.host.empty() && hosts.substr(hosts.rfind(' ') + 1) != "@" + j.host)
          hosts += (hosts.empty() ? " @" : " → @") + j.host;
      out += fmt::format("<div class=\"lane\"><div class=\"label\" title=\"{0}\">{0} · n={1}{2}</div><div class=\"track\">",
                         html_escape((step.cleanup ? "cleanup: " : "") + step.name), w, html_escape(hosts));
      for (const auto& j : run.jobs) {
        if (j.step != s || j.worker != w) continue;
        double left = 100.0 * static_cast<double>(j.start.count()) / static_cast<double>(span);
        double width = 100.0 * static_cast<double>(j.result.duration.count()) / static_cast<double>(span);
        // Labelled with the job's name where it fits (a screenshot or a PDF has no
        // tooltips), and the whole of it in the tooltip.
        out += fmt::format(
            "<div class=\"bar {}\" data-status=\"{}\" style=\"left:{:.3f}%;width:{:.3f}%\" title=\"{} › {} — {}\">{}</div>",
            css_class(j), css_class(j), left, width, html_escape(step.name), job_label(j),
            html_escape(describe(j.result, j.attempt)) + ", " + format_duration(j.result.duration), job_label(j));
      }
      out += "</div></div>\n";
    }
  }
  out += fmt::format("<div class=\"axis\"><span>0s</span><span>{}</span><span>{}</span></div>\n</div>\n",
                     format_duration(Millis(span / 2)), format_duration(Millis(span)));

  // A table per step.
  for (size_t s = 0; s < run.steps.size(); ++s) {
    const auto& step = run.steps[s];
    if (!step.ran) continue;
    out += fmt::format("<h2>{}{}</h2>\n", step.cleanup ? "cleanup: " : "", html_escape(step.name));
    if (!step.result.error.empty()) out += fmt::format("<pre class=\"error\">{}</pre>\n", html_escape(step.result.error));
    out += job_table(run, s, false);
    out += job_table(run, s, true);
  }

  // Output of the jobs that did not pass.
  bool header = false;
  for (const auto& j : run.jobs) {
    if (j.result.status == JobStatus::passed || j.result.status == JobStatus::cancelled) continue;
    if (!header) out += "<h2>Failed jobs</h2>\n", header = true;
    out += fmt::format("<h3>{} › {}: {}</h3>\n<p>worker {}{}{} · <code>{}</code></p>\n",
                       html_escape(run.steps[j.step].name), job_label(j), html_escape(describe(j.result, j.attempt)),
                       j.worker, j.host.empty() ? "" : " @" + html_escape(j.host),
                       j.project.empty() ? "" : " · cluster <code>" + html_escape(j.project) + "</code>",
                       html_escape(j.command));
    // Its failed tests (`results:`), with their diagnostics, before the output.
    if (j.result.tests && j.result.tests->failed() > 0) {
      out += "<ul class=\"failed-tests\">\n";
      for (const auto& t : j.result.tests->tests)
        if (t.outcome == results::Outcome::failed)
          out += fmt::format("<li><b>{}</b>{}{}</li>\n", html_escape(t.name),
                             t.reason.empty() ? "" : ": " + html_escape(t.reason),
                             t.details.empty() ? "" : "<pre>" + html_escape(t.details) + "</pre>");
      out += "</ul>\n";
    }
    out += fmt::format("<pre class=\"output\">{}</pre>\n", html_escape(j.tail));
    if (!j.result.saved_dir.empty()) {
      out += "<p class=\"saved\">saved:";
      for (const auto& f : j.result.saved_files)
        out += fmt::format(" <a href=\"file://{}\">{}</a>", html_escape(f),
                           html_escape(f.substr(f.rfind('/') == std::string::npos ? 0 : f.rfind('/') + 1)));
      out += "</p>\n";
      if (!j.result.saved_summary.empty())
        out += fmt::format("<pre class=\"services\">{}</pre>\n", html_escape(j.result.saved_summary));
    }
  }
  out += fmt::format("<script>{}</script>\n</body></html>\n", k_sort_script);
  return out;
}

}  // namespace pcr::report
