// novelcraft studio: the parts of a page that follow a draft.
// An element with data-refresh="URL" is refilled from URL every data-every ms while the server says
// the story is live (response header X-Studio-Live: 1). With data-reload-when-done, the whole page
// reloads once the work ends (a redrafted scene shows its new text). The scene editor keeps unsaved
// text in the browser. No library, no build step.
(function () {
  "use strict";

  function follow(el) {
    var every = parseInt(el.dataset.every || "1000", 10);
    var live = el.dataset.live === "1";

    function tick() {
      fetch(el.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          var nowLive = response.headers.get("X-Studio-Live") === "1";
          return response.text().then(function (html) {
            if (live && !nowLive && el.dataset.reloadWhenDone) {
              window.location.reload();
              return;
            }
            el.innerHTML = html;
            live = nowLive;
            el.dataset.live = nowLive ? "1" : "0";
            if (live) { window.setTimeout(tick, every); }
          });
        })
        .catch(function () {
          // The studio restarting: try again a little later, the draft goes on without us.
          window.setTimeout(tick, every * 3);
        });
    }

    if (live) { window.setTimeout(tick, every); }
  }

  // The scene editor: unsaved text is kept in this browser (localStorage), under the scene and the
  // version it was edited from, and comes back after a reload; the page after a save clears it.
  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  function keepDraft(area) {
    var store = storage();
    var key = area.dataset.draftKey;
    var notice = document.getElementById("draft-restored");
    var total = document.getElementById("word-total");
    var original = area.value;

    function count() {
      if (total) { total.textContent = (area.value.match(/\S+/g) || []).length + " words"; }
    }

    var kept = store ? store.getItem(key) : null;
    if (kept !== null && kept !== area.value) {
      area.value = kept;
      if (notice) { notice.hidden = false; }
    }
    area.addEventListener("input", function () {
      if (store) {
        try { store.setItem(key, area.value); } catch (e) { /* storage full: the form still saves */ }
      }
      count();
    });
    var discard = document.getElementById("discard-draft");
    if (discard) {
      discard.addEventListener("click", function () {
        if (store) { store.removeItem(key); }
        area.value = original;
        if (notice) { notice.hidden = true; }
        count();
      });
    }
    count();
  }

  function clearDrafts(el) {
    var store = storage();
    if (!store) { return; }
    var prefix = el.dataset.clearDraft + ":";
    for (var i = store.length - 1; i >= 0; i--) {
      var key = store.key(i);
      if (key && key.indexOf(prefix) === 0) { store.removeItem(key); }
    }
  }

  // The arrow keys turn the pages of a scene (← previous, → next) when no field has the focus.
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) { return; }
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) { return; }
    var link = document.getElementById(event.key === "ArrowLeft" ? "previous" : event.key === "ArrowRight" ? "next" : "");
    if (link) { window.location.href = link.href; }
  });

  // The rewrite form takes the passage selected in the scene's text.
  function followSelection(prose) {
    var field = document.getElementById(prose.dataset.selectionFor);
    var button = document.getElementById("rewrite-selection");
    var hint = document.getElementById("rewrite-hint");
    if (!field || !button) { return; }
    document.addEventListener("selectionchange", function () {
      var selection = window.getSelection();
      var inside = selection && selection.rangeCount && prose.contains(selection.getRangeAt(0).commonAncestorContainer);
      var text = inside ? selection.toString().trim() : "";
      var focus = document.activeElement;
      if (!text && focus && focus.closest && focus.closest("#rewrite-form")) {
        return;  // the focus moved to the form: keep the passage chosen
      }
      field.value = text;
      button.disabled = !text;
      if (hint) {
        hint.textContent = text ? "Selected: " + text.split(/\s+/).length + " words." : "Select a passage above to rewrite, expand or describe it.";
      }
    });
  }

  document.querySelectorAll("[data-selection-for]").forEach(followSelection);
  document.querySelectorAll("[data-refresh]").forEach(follow);
  document.querySelectorAll("textarea[data-draft-key]").forEach(keepDraft);
  document.querySelectorAll("[data-clear-draft]").forEach(clearDrafts);
})();
