// callbridge console: the only script (served from /ui/static; the CSP allows no other).
// Keeps the dashboard's "In progress now" table current by polling /ui/live.json.
"use strict";

// The row a live table shows when it has nothing to list.
function emptyRow(columns, text) {
  var row = document.createElement("tr");
  row.className = "empty";
  var td = document.createElement("td");
  td.colSpan = columns;
  td.textContent = text;
  row.appendChild(td);
  return row;
}

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
    if (!data.calls.length) { rows.appendChild(emptyRow(4, "No calls in progress.")); }
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

// Campaign progress: every element with data-live (the campaign page, the campaigns
// list, the dashboard's panel) polls its JSON and updates the rows marked with
// data-campaign="ID": the progress bar, percent, counts, state and ETA.
(function () {
  var boxes = document.querySelectorAll("[data-live]");
  Array.prototype.forEach.call(boxes, function (box) {
    var every = Number(box.dataset.every || "5000");

    function set(scope, selector, text) {
      Array.prototype.forEach.call(scope.querySelectorAll(selector), function (el) {
        el.textContent = text;
      });
    }

    // The dashboard's panel lists the campaigns running now: one started or ended since
    // the page loaded adds or removes a row (built with textContent: names are data).
    function rows(data) {
      var body = box.querySelector("tbody");
      var have = Array.prototype.map.call(body.querySelectorAll("tr[data-campaign]"), function (row) {
        return row.dataset.campaign;
      });
      var want = data.campaigns.map(function (campaign) { return campaign.id; });
      if (have.join(" ") === want.join(" ")) { return; }
      var fresh = document.createDocumentFragment();
      data.campaigns.forEach(function (campaign) {
        var row = document.createElement("tr");
        row.dataset.campaign = campaign.id;
        var head = document.createElement("th");
        head.scope = "row";
        var link = document.createElement("a");
        link.id = "c-" + campaign.id;
        link.href = "/ui/campaigns/" + encodeURIComponent(campaign.id);
        link.textContent = campaign.name;
        head.appendChild(link);
        row.appendChild(head);
        var state = document.createElement("td");
        state.dataset.field = "state";
        row.appendChild(state);
        var cell = document.createElement("td");
        var bar = document.createElement("progress");
        bar.dataset.field = "progress";
        bar.setAttribute("aria-labelledby", link.id);
        cell.appendChild(bar);
        cell.appendChild(document.createTextNode(" "));
        var percent = document.createElement("span");
        percent.dataset.field = "percent";
        cell.appendChild(percent);
        row.appendChild(cell);
        var eta = document.createElement("td");
        eta.dataset.field = "eta";
        row.appendChild(eta);
        fresh.appendChild(row);
      });
      if (!want.length) { fresh.appendChild(emptyRow(4, "No campaign running or paused.")); }
      body.replaceChildren(fresh);
    }

    function shown(data) {
      if (box.dataset.rows === "running") { rows(data); }
      data.campaigns.forEach(function (campaign) {
        var scopes = box.querySelectorAll("[data-campaign=\"" + CSS.escape(campaign.id) + "\"]");
        Array.prototype.forEach.call(scopes, function (scope) {
          Array.prototype.forEach.call(scope.querySelectorAll("progress[data-field=progress]"), function (bar) {
            bar.max = campaign.total;
            bar.value = campaign.done;
            bar.textContent = campaign.percent + " %";
          });
          set(scope, "[data-field=percent]", campaign.percent + " %");
          set(scope, "[data-field=done]", String(campaign.done));
          set(scope, "[data-field=total]", String(campaign.total));
          set(scope, "[data-field=state]", campaign.state);
          set(scope, "[data-field=eta]", campaign.eta || "\u2013");
          set(scope, "[data-field=updated]", "updated " + data.at);
          Object.keys(campaign.counts).forEach(function (state) {
            set(scope, "[data-count=\"" + state + "\"]", String(campaign.counts[state]));
          });
        });
      });
      box.dataset.polls = String(Number(box.dataset.polls || "0") + 1);
    }

    var finished = false;

    function show(data) {
      shown(data);
      // A campaign page stops asking once its campaign cannot change any more.
      finished = box.hasAttribute("data-until-final") && data.campaigns.every(function (c) {
        return c.state === "finished" || c.state === "cancelled";
      });
    }

    function poll() {
      if (finished) { return; }
      fetch(box.dataset.live, { credentials: "same-origin", headers: { accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data) { show(data); } })
        .catch(function () { /* offline for a moment: try again at the next tick */ })
        .finally(function () { setTimeout(poll, every); });
    }
    setTimeout(poll, Math.min(every, 1000));
  });
})();

// A sign-in link: `/ui#token=…` (what `callbridge sandbox` opens) fills the login form
// and sends it. The fragment never reaches the server or its logs, and is taken off
// the address at once so that it stays out of history and bookmarks.
(function () {
  var form = document.querySelector("form.login");
  var given = /^#token=(.+)$/.exec(window.location.hash);
  if (!given) { return; }
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  if (!form) { return; }
  form.querySelector("input[name=token]").value = decodeURIComponent(given[1]);
  form.submit();
})();
