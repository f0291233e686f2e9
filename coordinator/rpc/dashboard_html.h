// The dashboard page served at GET / by the REST server: one self-contained HTML document (no
// external assets) that reads the REST API of the same origin. The whole page lives in this one
// constant. Placeholder: a minimal job table, refreshed every few seconds.
#ifndef MXPORT_COORDINATOR_RPC_DASHBOARD_HTML_H_
#define MXPORT_COORDINATOR_RPC_DASHBOARD_HTML_H_

namespace mxport::coordinator::rpc {

inline constexpr char kDashboardHtml[] = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mxport coordinator</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2em; }
  table { border-collapse: collapse; }
  th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
</style>
</head>
<body>
<h1>mxport coordinator</h1>
<table>
  <thead><tr><th>job</th><th>phase</th><th>generation</th><th>progress</th><th>files</th>
  <th>message</th></tr></thead>
  <tbody id="jobs"></tbody>
</table>
<p id="error"></p>
<script>
async function refresh() {
  try {
    const response = await fetch('/v1/jobs');
    const body = await response.json();
    if (!response.ok) throw new Error(body.code + ': ' + body.message);
    const rows = (body.jobs || []).map(job => {
      const done = Number(job.bytes_done), total = Number(job.bytes_total);
      const pct = total > 0 ? (100 * done / total).toFixed(1) + ' %' : '';
      const cells = [job.spec.job_id, job.phase, job.generation, pct,
                     job.files_committed + ' / ' + job.files_total, job.message];
      const tr = document.createElement('tr');
      for (const cell of cells) {
        const td = document.createElement('td');
        td.textContent = cell;
        tr.appendChild(td);
      }
      return tr;
    });
    document.getElementById('jobs').replaceChildren(...rows);
    document.getElementById('error').textContent = '';
  } catch (e) {
    document.getElementById('error').textContent = String(e);
  }
}
refresh();
setInterval(refresh, 3000);
</script>
</body>
</html>
)html";

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_DASHBOARD_HTML_H_
