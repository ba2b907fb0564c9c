// novelcraft studio: the parts of a page that follow a draft.
// An element with data-refresh="URL" is refilled from URL every data-every ms while the server says
// the story is live (response header X-Studio-Live: 1). With data-reload-when-done, the whole page
// reloads once the work ends (a redrafted scene shows its new text). No library, no build step.
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

  document.querySelectorAll("[data-refresh]").forEach(follow);
})();
