// callbridge console: the only script (served from /ui/static; the CSP allows no other).
// Keeps the dashboard's "In progress now" table current by polling /ui/live.json.
"use strict";
(function () {
  var table = document.getElementById("live");
  if (!table) { return; }
  var body = table.querySelector("tbody");
  var stamp = document.getElementById("live-updated");
  var every = 5000;

  function cell(row, text, href) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
  }

  function show(data) {
    var rows = document.createDocumentFragment();
    data.calls.forEach(function (call) {
      var row = document.createElement("tr");
      cell(row, call.started, "/ui/calls/" + encodeURIComponent(call.key));
      cell(row, (call.from || "") + " \u2192 " + (call.to || ""));
      cell(row, call.rule || "");
      cell(row, call.status);
      rows.appendChild(row);
    });
    if (!data.calls.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      var td = document.createElement("td");
      td.colSpan = 4;
      td.textContent = "No calls in progress.";
      empty.appendChild(td);
      rows.appendChild(empty);
    }
    body.replaceChildren(rows);
    if (stamp) { stamp.textContent = "updated " + data.at; }
    table.dataset.polls = String(Number(table.dataset.polls || "0") + 1);
  }

  function poll() {
    fetch(table.dataset.src, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () { /* offline for a moment: try again at the next tick */ })
      .finally(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, Number(table.dataset.first || "1000"));
})();
