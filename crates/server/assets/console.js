// falco-analyst console: filters without reload, live updates (Server-Sent Events), tuning
// selection. Loaded from /ui/assets (the CSP allows no inline script). Server data is only
// ever inserted as text (textContent) or as attributes we build; never as HTML.
"use strict";
(function () {
  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  // Filters: a change re-reads the list and swaps the results in place.
  function wireFilters() {
    var form = document.querySelector("form.filters.auto");
    if (!form) { return; }
    var results = document.getElementById("results");
    var timer = null;
    function apply() {
      var params = new URLSearchParams(new FormData(form));
      var keys = Array.from(params.keys());
      keys.forEach(function (k) { if (params.get(k) === "") { params.delete(k); } });
      var url = form.getAttribute("action") + (params.toString() ? "?" + params.toString() : "");
      if (!results) { window.location.assign(url); return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
        .then(function (html) {
          // DOMParser never runs scripts; the page is ours and its values are escaped.
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("results");
          if (!fresh) { window.location.assign(url); return; }
          results.replaceChildren.apply(results, Array.from(fresh.childNodes).map(function (n) {
            return document.importNode(n, true);
          }));
          window.history.replaceState(null, "", url);
          document.body.setAttribute("data-filtered", url);
        })
        .catch(function () { window.location.assign(url); });
    }
    form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(apply, 150); });
    form.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
  }

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    return td;
  }

  function badge(text, cls) {
    var s = document.createElement("span");
    s.className = "badge " + cls;
    s.textContent = text;
    return s;
  }

  function link(href, text) {
    var a = document.createElement("a");
    // Only our own console paths become links.
    if (typeof href === "string" && href.indexOf("/ui/") === 0) { a.setAttribute("href", href); }
    a.textContent = text;
    return a;
  }

  function feed(text, href) {
    var box = document.getElementById("live-feed");
    if (!box) { return; }
    var li = document.createElement("li");
    li.appendChild(link(href, text));
    var ul = box.querySelector("ul");
    ul.insertBefore(li, ul.firstChild);
    while (ul.children.length > 20) { ul.removeChild(ul.lastChild); }
    box.classList.add("has-items");
  }

  function onIncident(d) {
    feed((d.verdict || "") + " incident: " + (d.entity || "") + " (" + d.alerts + " alerts)", d.href);
    var table = document.querySelector('table[data-live="incident"] tbody');
    if (!table) { return; }
    var old = Array.from(table.querySelectorAll("tr")).find(function (tr) { return tr.getAttribute("data-id") === d.id; });
    if (old) { old.remove(); }
    var tr = document.createElement("tr");
    tr.setAttribute("data-id", d.id);
    tr.className = "fresh";
    var v = document.createElement("td"); v.appendChild(badge(d.verdict, "v-" + d.verdict)); tr.appendChild(v);
    var s = document.createElement("td"); s.appendChild(badge("new", "s-new")); tr.appendChild(s);
    var e = document.createElement("td"); e.appendChild(link(d.href, d.entity)); tr.appendChild(e);
    tr.appendChild(cell(""));
    tr.appendChild(cell(""));
    tr.appendChild(cell(String(d.alerts), "num"));
    tr.appendChild(cell(d.last_seen || ""));
    tr.appendChild(cell(""));
    table.insertBefore(tr, table.firstChild);
  }

  function onCluster(d) {
    feed((d.verdict || "") + " cluster: " + (d.rule || "") + " ×" + d.count, d.href);
  }

  function wireLive() {
    if (!document.getElementById("live-feed") || !window.EventSource) { return; }
    var status = document.getElementById("live-status");
    var es = new EventSource("/ui/live");
    es.onopen = function () { if (status) { status.className = "live-on"; } };
    es.onerror = function () { if (status) { status.className = "live-off"; } };
    es.addEventListener("incident", function (ev) { try { onIncident(JSON.parse(ev.data)); } catch (e) { /* ignore */ } });
    es.addEventListener("cluster", function (ev) { try { onCluster(JSON.parse(ev.data)); } catch (e) { /* ignore */ } });
  }

  function wireTuning() {
    var all = document.getElementById("select-all");
    if (!all) { return; }
    all.addEventListener("change", function () {
      document.querySelectorAll("input.pick").forEach(function (c) { c.checked = all.checked; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireFilters();
    wireLive();
    wireTuning();
    document.body.setAttribute("data-console", "ready");
    void csrfToken;
  });
})();
