// The operator console: asks /api/state every refresh and redraws the tables in place.
// The tables get textContent only, never HTML, so nothing the bus holds can run as script.
// One thing is inserted as live markup: the data-flow diagram, an SVG the console drew
// from the catalogue and reduced on the server to drawing elements (no script, link,
// foreign content or event handler: adapters/console/svg_safety.py), parsed here as XML
// (DOMParser, image/svg+xml: no HTML parsing) and adopted into the page when it changes.
"use strict";

(function () {
  const refreshMs = Number(document.body.dataset.refreshMs) || 5000;

  function cell(row, field, text, subscriber) {
    const td = document.createElement("td");
    td.dataset.field = field;
    if (subscriber !== undefined) {
      td.dataset.subscription = subscriber;
    }
    td.textContent = text === null || text === undefined ? "–" : String(text);
    row.appendChild(td);
    return td;
  }

  function replace(container, children) {
    container.replaceChildren(...children);
  }

  function subscriptionRows(subscriptions) {
    return subscriptions.map(function (s) {
      const row = document.createElement("tr");
      row.dataset.subscription = s.subscriber;
      row.classList.toggle("lagging", s.lagging);
      row.classList.toggle("dead-lettering", s.dead_letters > 0);
      row.classList.toggle("expired", s.expired);
      row.classList.toggle("expiring", s.days_left !== null && s.days_left < 30);
      cell(row, "subscriber", s.subscriber, s.subscriber);
      cell(row, "opd", s.opd, s.subscriber);
      cell(row, "lag", s.lag, s.subscriber);
      cell(row, "last_applied", s.last_applied, s.subscriber);
      cell(row, "dead_letters", s.dead_letters, s.subscriber);
      cell(row, "expires", s.expires === null ? null : s.expires + (s.expired ? " (expired)" : ""), s.subscriber);
      cell(row, "days_left", s.days_left, s.subscriber);
      return row;
    });
  }

  function deadLetterItems(subscriptions) {
    const items = [];
    subscriptions.forEach(function (s) {
      s.dead_letter_samples.forEach(function (d) {
        const li = document.createElement("li");
        li.dataset.subscription = s.subscriber;
        li.dataset.field = "dead_letter";
        li.dataset.offset = String(d.offset);
        const head = document.createElement("div");
        head.textContent = s.subscriber + " · " + d.dlq_topic + "[" + d.partition + "]@" + d.offset +
          " · " + d.dead_lettered_at + " · " + (d.error_class || "");
        const message = document.createElement("div");
        message.dataset.field = "error_message";
        message.textContent = d.error_message;
        li.append(head, message);
        if (d.event) {
          const type = document.createElement("div");
          type.dataset.field = "event_type";
          type.textContent = (d.event_type || "") + " " + (d.event_id || "");
          const event = document.createElement("code");
          event.dataset.field = "event";
          event.textContent = JSON.stringify(d.event);
          li.append(type, event);
        } else if (d.undecodable) {
          const note = document.createElement("code");
          note.dataset.field = "undecodable";
          note.textContent = " " + d.undecodable;
          li.append(note);
        }
        items.push(li);
      });
    });
    return items;
  }

  function adapterItems(adapters) {
    return adapters.map(function (a) {
      const li = document.createElement("li");
      li.dataset.adapter = a.name;
      li.className = a.up ? "up" : "down";
      const name = document.createElement("span");
      name.textContent = a.name + ": ";
      const state = document.createElement("span");
      state.dataset.adapter = a.name;
      state.dataset.field = "state";
      state.textContent = a.up ? "up" : "down";
      const detail = document.createElement("small");
      detail.textContent = " (" + a.detail + ")";
      li.append(name, state, detail);
      return li;
    });
  }

  function auditRows(records) {
    return records.map(function (r) {
      const row = document.createElement("tr");
      row.dataset.auditId = r.id;
      row.dataset.action = r.action;
      ["at", "action", "principal", "subscriber", "reason", "outcome"].forEach(function (field) {
        cell(row, field, r[field]);
      });
      return row;
    });
  }

  let drawn = null;

  function diagram(svg, problem) {
    const error = document.getElementById("diagram-error");
    error.hidden = !problem;
    error.textContent = problem ? "The diagram could not be drawn: " + problem : "";
    if (!svg || svg === drawn) {
      return;
    }
    const parsed = new DOMParser().parseFromString(svg, "image/svg+xml");
    const root = parsed.documentElement;
    if (root.nodeName !== "svg") {
      return;
    }
    document.getElementById("flows").replaceChildren(document.importNode(root, true));
    drawn = svg;
  }

  function render(state) {
    const taken = document.getElementById("taken-at");
    taken.textContent = state.taken_at || "not read yet";
    taken.dataset.reads = String((Number(taken.dataset.reads) || 0) + 1);
    const error = document.getElementById("read-error");
    error.hidden = !state.error;
    error.textContent = state.error ? " · last read failed: " + state.error : "";
    replace(document.getElementById("subscriptions"), subscriptionRows(state.subscriptions));
    replace(document.getElementById("dead-letters"), deadLetterItems(state.subscriptions));
    replace(document.getElementById("adapters"), adapterItems(state.adapters));
    replace(document.getElementById("audit"), auditRows(state.audit));
    diagram(state.diagram, state.diagram_error);
  }

  async function poll() {
    try {
      const answer = await fetch("/api/state", { credentials: "same-origin", cache: "no-store" });
      if (answer.status === 401) {
        window.location.assign("/login");
        return;
      }
      if (answer.ok) {
        render(await answer.json());
      }
    } catch (problem) {
      const error = document.getElementById("read-error");
      error.hidden = false;
      error.textContent = " · the console does not answer";
    }
    window.setTimeout(poll, refreshMs);
  }

  poll();
})();
