// plantao's dashboard: the pages work without this file. It refreshes the page's <main> in place
// (every data-refresh seconds, keeping the scroll position and the rows opened), and sends forms
// without a full reload.
"use strict";
(function () {
  var timer = null;

  function main() { return document.getElementById("main"); }

  function dropNotice() {
    var url = new URL(location.href);
    if (url.searchParams.has("notice")) {
      url.searchParams.delete("notice");
      url.searchParams.delete("run");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  }

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("main");
    var old = main();
    if (!fresh || !old) { return false; }
    var open = {};
    old.querySelectorAll("details[data-key]").forEach(function (d) { open[d.dataset.key] = d.open; });
    var y = window.scrollY;
    old.innerHTML = fresh.innerHTML;
    old.dataset.refresh = fresh.dataset.refresh || "0";
    old.querySelectorAll("details[data-key]").forEach(function (d) {
      if (d.dataset.key in open) { d.open = open[d.dataset.key]; }
    });
    if (doc.title) { document.title = doc.title; }
    window.scrollTo(0, y);
    return true;
  }

  function schedule() {
    if (timer) { clearTimeout(timer); }
    var seconds = parseFloat((main() || {}).dataset ? main().dataset.refresh : "0");
    if (seconds > 0) { timer = setTimeout(refresh, seconds * 1000); }
  }

  function refresh() {
    fetch(location.href, { credentials: "same-origin", headers: { "X-Plantao-Refresh": "1" } })
      .then(function (r) {
        if (new URL(r.url).pathname === "/login") { location.reload(); return null; }
        return r.text();
      })
      .then(function (html) { if (html !== null) { swap(html); } })
      .catch(function () {
        var stamp = document.getElementById("refreshed");
        if (stamp) { stamp.classList.add("stale"); }
      })
      .finally(schedule);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.method.toLowerCase() !== "post" || form.action.indexOf("/login") >= 0 || form.action.indexOf("/logout") >= 0) { return; }
    event.preventDefault();
    var body = new URLSearchParams(new FormData(form));
    if (event.submitter && event.submitter.name) { body.append(event.submitter.name, event.submitter.value); }
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) {
        var to = new URL(r.url);
        return r.text().then(function (html) {
          if (r.redirected && to.pathname !== location.pathname) { location.assign(r.url); return; }
          if (r.redirected) { history.replaceState(null, "", to.pathname + to.search); }
          swap(html);
          dropNotice();
          schedule();
        });
      })
      .catch(function () { form.submit(); });
  });

  document.addEventListener("DOMContentLoaded", function () { dropNotice(); schedule(); });
})();
