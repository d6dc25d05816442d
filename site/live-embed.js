/*
 * livecam embed script: turns <img data-livecam="https://host/path/"> on any site into
 * a live, self-refreshing image. One file, no dependencies:
 *
 *   <img data-livecam="https://cam.example.com/live/" alt="Our roof camera" width="800" height="600">
 *   <script src="https://cam.example.com/live/live-embed.js" defer></script>
 *
 * It polls live.json beside the images (the host must allow CORS for GET, see the
 * README), loads the smallest image that covers the element, swaps it in once
 * loaded, and pauses while the tab is hidden.
 */
"use strict";

(function livecamEmbed() {
  const MIN_POLL_MS = 1000;
  const MAX_POLL_MS = 60000;
  const MAX_BACKOFF_MS = 60000;

  function pick(list, node) {
    const largest = list[list.length - 1];
    const width = node.getBoundingClientRect().width || node.width || largest.width;
    const need = width * (window.devicePixelRatio || 1);
    return list.find((e) => e.width >= need - 1) || largest;
  }

  function attach(node) {
    let base;
    try {
      base = new URL(node.dataset.livecam, document.baseURI);
    } catch (err) {
      return;
    }
    if (!base.pathname.endsWith("/")) {
      base.pathname += "/";
    }
    let timer = 0;
    let inflight = false;
    let failures = 0;
    let interval = 2;
    let shown = "";
    let loading = "";

    function schedule() {
      clearTimeout(timer);
      if (document.visibilityState === "hidden") {
        return;
      }
      const delay = failures > 0 ? Math.min(MAX_BACKOFF_MS, MIN_POLL_MS * 2 ** failures) : Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, interval * 1000));
      timer = setTimeout(poll, delay);
    }

    function show(url, title, capturedAt) {
      if (url === shown || url === loading) {
        return;
      }
      loading = url;
      const next = new Image();
      next.src = url;
      next
        .decode()
        .then(() => {
          if (loading !== url) {
            return;
          }
          loading = "";
          shown = url;
          node.src = url;
          node.alt = `${title}: live image captured ${new Date(capturedAt).toLocaleString()}`;
          node.dataset.livecamSeq = url.split("?v=")[1] || "";
        })
        .catch(() => {
          if (loading === url) {
            loading = "";
          }
        });
    }

    async function poll() {
      clearTimeout(timer);
      if (inflight || document.visibilityState === "hidden") {
        return;
      }
      inflight = true;
      try {
        const response = await fetch(new URL("live.json", base), { cache: "no-cache", mode: "cors", credentials: "omit" });
        if (!response.ok) {
          throw new Error(`HTTP ${response.status}`);
        }
        const m = await response.json();
        const list = Object.entries((m && m.images) || {})
          .filter(([, e]) => e && Number(e.width) > 0)
          .map(([name, e]) => ({ name, width: Number(e.width), seq: Number.isInteger(e.seq) ? e.seq : m.seq }))
          .sort((a, b) => a.width - b.width);
        if (!list.length || Number.isNaN(Date.parse(m.captured_at))) {
          throw new Error("malformed manifest");
        }
        interval = Number(m.interval) || 0;
        failures = 0;
        node.dataset.livecamState = "live";
        const entry = pick(list, node);
        const title = typeof m.title === "string" && m.title ? m.title : "Live camera";
        show(new URL(`${encodeURI(entry.name)}?v=${entry.seq}`, base).href, title, m.captured_at);
      } catch (err) {
        failures += 1;
        node.dataset.livecamState = "offline";
      } finally {
        inflight = false;
      }
      schedule();
    }

    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") {
        clearTimeout(timer);
      } else {
        poll();
      }
    });
    poll();
  }

  function start() {
    document.querySelectorAll("img[data-livecam]").forEach(attach);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
