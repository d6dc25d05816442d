/*
 * livecam live page (index.html, embed.html). No dependencies, no build step.
 *
 * Polls the small live.json manifest; only when the shown frame changed does it load
 * the new image, off-screen, and swap it in once decoded (no flicker, no broken-image
 * icon). Text from the manifest is set with textContent only.
 */
"use strict";

(function livecam() {
  const MIN_POLL_MS = 1000;
  const MAX_POLL_MS = 60000;
  const MAX_BACKOFF_MS = 60000;
  const $ = (id) => document.getElementById(id);

  const img = $("live");
  if (!img) {
    return;
  }
  const el = {
    title: $("title"),
    caption: $("caption"),
    meta: $("meta"),
    location: $("location"),
    link: $("link"),
    full: $("full"),
    placeholder: $("placeholder"),
    state: $("state"),
    updated: $("updated"),
  };

  let manifest = null; // the last valid manifest
  let shownUrl = ""; // the image URL on screen
  let loadingUrl = ""; // the image URL loading off-screen
  let failures = 0; // manifest fetches failed in a row
  let inflight = false;
  let timer = 0;
  let clockOffset = 0; // web server's clock minus ours, when they differ by > 2 s

  const now = () => Date.now() + clockOffset;

  function setText(node, text) {
    if (node && node.textContent !== text) {
      node.textContent = text;
    }
  }

  function valid(m) {
    return (
      m !== null &&
      typeof m === "object" &&
      Number.isInteger(m.seq) &&
      typeof m.captured_at === "string" &&
      !Number.isNaN(Date.parse(m.captured_at)) &&
      m.images !== null &&
      typeof m.images === "object"
    );
  }

  function entries(m) {
    return Object.entries(m.images)
      .filter(([, e]) => e && Number(e.width) > 0 && Number(e.height) > 0)
      .map(([name, e]) => ({ name, width: Number(e.width), height: Number(e.height), seq: Number.isInteger(e.seq) ? e.seq : m.seq }))
      .sort((a, b) => a.width * a.height - b.width * b.height);
  }

  // The smallest image that covers the displayed size times the device pixel ratio.
  function pick(list) {
    const largest = list[list.length - 1];
    const box = (el.full || img).getBoundingClientRect();
    const aspect = largest.width / largest.height;
    const shownWidth = Math.min(box.width || largest.width, (box.height || largest.height) * aspect);
    const need = shownWidth * (window.devicePixelRatio || 1);
    return list.find((e) => e.width >= need - 1) || largest;
  }

  function pollDelay() {
    if (failures > 0) {
      return Math.min(MAX_BACKOFF_MS, MIN_POLL_MS * 2 ** failures);
    }
    const interval = manifest ? Number(manifest.interval) * 1000 : 2000;
    return Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, interval || 0));
  }

  function schedule(delay) {
    clearTimeout(timer);
    if (document.visibilityState !== "hidden") {
      timer = setTimeout(poll, delay);
    }
  }

  async function poll() {
    clearTimeout(timer);
    if (inflight || document.visibilityState === "hidden") {
      return;
    }
    inflight = true;
    try {
      // no-store: never a cached manifest. (Revalidating is not safe everywhere: nginx's
      // ETag and Last-Modified have 1 s resolution, so two frames in one second look alike.)
      const response = await fetch("live.json", { cache: "no-store" });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      const m = await response.json();
      if (!valid(m)) {
        throw new Error("malformed manifest");
      }
      const date = Date.parse(response.headers.get("Date") || "");
      if (!Number.isNaN(date)) {
        const age = Number(response.headers.get("Age")) || 0;
        const offset = date + age * 1000 - Date.now();
        clockOffset = Math.abs(offset) > 2000 ? offset : 0;
      }
      failures = 0;
      manifest = m;
    } catch (err) {
      failures += 1;
    } finally {
      inflight = false;
    }
    render();
    schedule(pollDelay());
  }

  function load(url, entry) {
    if (url === shownUrl || url === loadingUrl) {
      return; // never two requests for the same image
    }
    loadingUrl = url;
    const next = new Image();
    next.src = url;
    next
      .decode()
      .then(() => {
        if (loadingUrl !== url) {
          return; // a newer frame overtook this one
        }
        loadingUrl = "";
        shownUrl = url;
        img.src = url;
        img.classList.remove("waiting");
        img.width = entry.width;
        img.height = entry.height;
        if (el.placeholder) {
          el.placeholder.hidden = true;
        }
        updateAlt();
      })
      .catch(() => {
        if (loadingUrl === url) {
          loadingUrl = ""; // keep the old image; the next poll tries again
        }
      });
  }

  function updateAlt() {
    if (!manifest) {
      return;
    }
    const when = new Date(Date.parse(manifest.captured_at));
    const title = typeof manifest.title === "string" && manifest.title ? manifest.title : "Live camera";
    img.alt = `${title}: live image captured ${when.toLocaleString()}`;
  }

  function ago(seconds) {
    if (seconds < 90) {
      return `${Math.round(seconds)} s`;
    }
    if (seconds < 5400) {
      return `${Math.round(seconds / 60)} min`;
    }
    if (seconds < 172800) {
      return `${Math.round(seconds / 3600)} h`;
    }
    return `${Math.round(seconds / 86400)} days`;
  }

  function tick() {
    let state = "connecting";
    let text = "";
    if (manifest) {
      const age = Math.max(0, (now() - Date.parse(manifest.captured_at)) / 1000);
      const interval = Math.max(0, Number(manifest.interval) || 0);
      const staleAfter = Number(manifest.stale_after) > 0 ? Number(manifest.stale_after) : Math.max(3 * interval, 10);
      text = `updated ${ago(age)} ago`;
      state = age > staleAfter ? "stale" : "live";
    }
    if (failures > 0) {
      state = "offline";
      text = manifest ? `camera unreachable; last image ${text.replace("updated ", "")}` : "camera unreachable";
    }
    if (document.body.dataset.state !== state) {
      document.body.dataset.state = state;
    }
    setText(el.state, state);
    setText(el.updated, text);
  }

  function safeLink(value) {
    try {
      const u = new URL(value);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : "";
    } catch (err) {
      return "";
    }
  }

  function renderText(m) {
    const title = typeof m.title === "string" && m.title ? m.title : "Live camera";
    if (document.title !== title) {
      document.title = title;
    }
    setText(el.title, title);
    const caption = typeof m.caption === "string" ? m.caption : "";
    if (el.caption) {
      setText(el.caption, caption);
      el.caption.hidden = !caption;
    }
    const location = typeof m.location === "string" ? m.location : "";
    const link = typeof m.link === "string" ? safeLink(m.link) : "";
    if (el.meta) {
      setText(el.location, location);
      if (el.link) {
        el.link.hidden = !link;
        if (link) {
          el.link.href = link;
          el.link.rel = "noopener noreferrer";
          setText(el.link, new URL(link).host);
        }
      }
      el.meta.hidden = !location && !link;
    }
  }

  function render() {
    if (manifest) {
      renderText(manifest);
      const list = entries(manifest);
      if (list.length) {
        const entry = pick(list);
        if (el.full) {
          el.full.href = list[list.length - 1].name;
        }
        load(`${encodeURI(entry.name)}?v=${entry.seq}`, entry);
      }
      fillSnippets(list);
    }
    tick();
  }

  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  let snippetsDone = false;
  function fillSnippets(list) {
    const imgCode = $("snippet-img");
    if (!imgCode || snippetsDone || !list.length) {
      return;
    }
    snippetsDone = true;
    const base = new URL(".", window.location.href).href;
    const title = escapeHtml(typeof manifest.title === "string" ? manifest.title : "Live camera");
    const mid = list.find((e) => e.width >= 640) || list[list.length - 1];
    setText(imgCode, `<img src="${base}${mid.name}" alt="${title}" width="${mid.width}" height="${mid.height}">`);
    setText($("snippet-iframe"), `<iframe src="${base}embed.html" title="${title}" width="${mid.width}" height="${mid.height}" style="border:0" allowfullscreen></iframe>`);
    setText($("snippet-script"), `<img data-livecam="${base}" alt="${title}" width="${mid.width}" height="${mid.height}">\n<script src="${base}live-embed.js" defer></script>`);
  }

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 200);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      clearTimeout(timer);
    } else {
      poll();
    }
  });
  setInterval(tick, 1000);
  poll();
})();
