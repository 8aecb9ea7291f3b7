// The admin page: reads the admin API with the bearer token given in the URL fragment
// (`#token=…`, never sent to a server) or the token field, and renders what it reads as text.
(function () {
  "use strict";
  var TOKEN_KEY = "nexus-admin-token";
  var PAGE = 50;
  var info = null;

  var fragment = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (fragment) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(fragment[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }

  function $(id) { return document.getElementById(id); }

  function request(method, path) {
    var headers = { "Accept": "application/json" };
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) { headers["Authorization"] = "Bearer " + token; }
    return fetch(path, { method: method, headers: headers, cache: "no-store", credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            throw new Error(response.status + ": " + (body.error || response.statusText));
          }
          return body;
        });
      });
  }

  function text(tag, value, className) {
    var node = document.createElement(tag);
    node.textContent = value == null ? "" : String(value);
    if (className) { node.className = className; }
    return node;
  }

  function cell(row, content, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    if (content instanceof Node) { td.appendChild(content); } else { td.textContent = content == null ? "" : String(content); }
    row.appendChild(td);
    return td;
  }

  function when(value) {
    if (!value) { return ""; }
    var date = new Date(value);
    return isNaN(date.getTime()) ? value : date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function state(name, reason) {
    var span = document.createElement("span");
    span.appendChild(text("span", name, "state state-" + String(name).replace(/[^a-z_]/g, "")));
    if (reason) { span.appendChild(text("span", reason, "reason")); }
    return span;
  }

  function links(list) {
    var box = document.createElement("div");
    box.className = "links";
    (list || []).forEach(function (link) {
      var node;
      if (/^https?:\/\//i.test(link.url)) {
        node = document.createElement("a");
        node.href = link.url;
        node.rel = "noopener noreferrer";
        node.textContent = link.type;
      } else {
        node = text("span", link.type + ": " + link.url);
      }
      node.title = link.url;
      node.setAttribute("data-type", link.type);
      node.setAttribute("data-url", link.url);
      box.appendChild(node);
    });
    return box;
  }

  function button(label, action) {
    var node = text("button", label);
    node.type = "button";
    node.addEventListener("click", function () {
      node.disabled = true;
      action().then(function (body) {
        say(body.status + " (" + body.id + ")", false);
        load();
      }, function (e) {
        node.disabled = false;
        say(e.message, true);
      });
    });
    return node;
  }

  function say(message, isError) {
    var node = $("message");
    node.textContent = message;
    node.className = isError ? "error" : "";
  }

  function operationRow(op) {
    var row = document.createElement("tr");
    row.setAttribute("data-id", op.id);
    row.setAttribute("data-state", op.state);
    var name = document.createElement("div");
    name.appendChild(text("div", op.service + "/" + op.operation));
    name.appendChild(text("div", op.id, "id"));
    cell(row, name);
    cell(row, op.endpoint);
    cell(row, state(op.state, op.blocked_reason));
    cell(row, op.attempt);
    cell(row, op.last_failure);
    cell(row, when(op.next_attempt_at));
    var all = (op.start_links || []).concat(op.completion_links || []);
    cell(row, links(all));
    var terminal = ["succeeded", "failed", "canceled", "timed_out"].indexOf(op.state) >= 0;
    cell(row, info.mutations && !terminal
      ? button("Cancel", function () { return request("POST", "api/operations/" + encodeURIComponent(op.id) + "/cancel"); })
      : "");
    return row;
  }

  function handlerRow(op) {
    var row = document.createElement("tr");
    row.setAttribute("data-state", op.state);
    row.setAttribute("data-request-id", op.request_id);
    cell(row, op.service + "/" + op.operation);
    cell(row, op.token, "id");
    cell(row, op.principal);
    cell(row, state(op.state, op.cancel_requested_at ? "cancel requested" : null));
    cell(row, when(op.started_at));
    cell(row, links(op.links));
    return row;
  }

  function deliveryRow(d) {
    var row = document.createElement("tr");
    row.setAttribute("data-id", d.id);
    row.setAttribute("data-state", d.state);
    cell(row, d.id, "id");
    cell(row, d.token, "id");
    cell(row, d.outcome);
    cell(row, state(d.state));
    cell(row, d.attempts);
    cell(row, d.last_error);
    cell(row, when(d.next_attempt_at));
    cell(row, d.url);
    cell(row, info.mutations && d.state === "dead"
      ? button("Redeliver", function () { return request("POST", "api/deliveries/" + encodeURIComponent(d.id) + "/redeliver"); })
      : "");
    return row;
  }

  // Fills table `id` from `path` (with `query`), one page at a time.
  function table(id, path, query, render) {
    var body = $(id).tBodies[0];
    var more = $(id + "-more");
    body.textContent = "";
    function page(cursor) {
      var q = query + "&limit=" + PAGE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
      return request("GET", path + "?" + q).then(function (result) {
        result.items.forEach(function (item) { body.appendChild(render(item)); });
        if (!body.rows.length) {
          var row = document.createElement("tr");
          var td = cell(row, "Nothing here.", "empty");
          td.colSpan = $(id).tHead.rows[0].cells.length;
          body.appendChild(row);
        }
        more.hidden = !result.next_cursor;
        more.onclick = function () { page(result.next_cursor); };
      });
    }
    return page(null);
  }

  function load() {
    var status = $("status");
    status.textContent = "Loading…";
    status.setAttribute("data-state", "loading");
    request("GET", "api/info").then(function (found) {
      info = found;
      var finished = $("finished").checked;
      var work = [];
      $("caller").hidden = !info.caller;
      $("handler").hidden = !info.handler;
      if (info.caller) {
        work.push(table("operations", "api/operations", finished ? "" : "state=pending", operationRow));
      }
      if (info.handler) {
        work.push(table("handler-operations", "api/handler/operations", finished ? "" : "state=running", handlerRow));
        work.push(table("deliveries", "api/deliveries", finished ? "" : "failed=true", deliveryRow));
      }
      return Promise.all(work);
    }).then(function () {
      status.textContent = "Updated " + when(new Date().toISOString());
      status.setAttribute("data-state", "ready");
    }, function (e) {
      status.textContent = "Cannot load: " + e.message;
      status.setAttribute("data-state", "error");
    });
  }

  $("auth").addEventListener("submit", function (event) {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    $("token").value = "";
    load();
  });
  $("refresh").addEventListener("click", load);
  $("finished").addEventListener("change", load);
  load();
}());
