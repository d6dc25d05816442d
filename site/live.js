/*
 * livecam live page (index.html, embed.html): everything around the image. No
 * dependencies, no build step. The image itself is driven by live-embed.js, loaded
 * first (window.livecam): polling, choosing the variant, swapping frames in once
 * decoded. This file shows the title, the live/stale/offline state, "updated N s ago"
 * and the embed snippets. Text from the manifest is set with textContent only.
 */
"use strict";

(function livecamPage() {
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
    fullLink: $("full-link"),
    placeholder: $("placeholder"),
    notice: $("notice"),
    state: $("state"),
    updated: $("updated"),
    announce: $("announce"),
  };
  const LABELS = { connecting: "connecting", live: "live", stale: "stale", unknown: "age unknown", offline: "offline" };

  let manifest = null; // the manifest last rendered
  let shownUrl = "";
  let state = "";

  function setText(node, text) {
    if (node && node.textContent !== text) {
      node.textContent = text;
    }
  }

  function setHidden(node, value) {
    if (node && node.hidden !== value) {
      node.hidden = value;
    }
  }

  function text(value) {
    return typeof value === "string" ? value.trim() : "";
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

  function safeLink(value) {
    try {
      const u = new URL(value);
      return u.protocol === "https:" || u.protocol === "http:" ? u : null;
    } catch (err) {
      return null;
    }
  }

  function renderManifest(m, snap) {
    const title = text(m.title) || "Live camera";
    if (document.title !== title) {
      document.title = title;
    }
    setText(el.title, title);
    const caption = text(m.caption);
    setText(el.caption, caption);
    setHidden(el.caption, !caption);
    const location = text(m.location);
    const link = safeLink(text(m.link));
    setText(el.location, location);
    if (el.link) {
      el.link.hidden = !link;
      if (link) {
        el.link.href = link.href;
        el.link.rel = "noopener noreferrer";
        setText(el.link, link.host);
      }
    }
    setHidden(el.meta, !location && !link);
    const largest = m.list[m.list.length - 1];
    // The frame keeps the image's aspect ratio, so the page never jumps (style.css).
    document.documentElement.style.setProperty("--aspect", `${largest.width} / ${largest.height}`);
    const full = snap.imageUrl(largest);
    for (const a of [el.full, el.fullLink]) {
      if (a && full && a.href !== full) {
        a.href = full;
      }
    }
    fillSnippets(m, snap);
  }

  function announce(next, snap) {
    if (!el.announce || next === state || next === "connecting") {
      return;
    }
    let message = "Live image";
    if (next === "stale") {
      message = "Stale: the camera has not published a new image for a while";
    } else if (next === "unknown") {
      message = "Age unknown: the camera's clock is ahead of the server's";
    } else if (next === "offline") {
      message = `Offline: ${snap.error || "cannot reach the camera"}`;
    } else if (state === "stale" || state === "unknown" || state === "offline") {
      message = "Live again";
    }
    setText(el.announce, message);
  }

  function render(snap) {
    if (document.body.dataset.mode === "history") {
      return; // history.js owns the view; its live polling pauses until "Live"
    }
    const m = snap.manifest;
    if (m && m !== manifest) {
      renderManifest(m, snap);
      manifest = m;
    }
    const shown = snap.shown;
    if (shown && shown.url !== shownUrl) {
      shownUrl = shown.url;
      img.classList.remove("waiting");
      setHidden(el.placeholder, true);
      if (el.updated) {
        const when = new Date(shown.capturedMs);
        el.updated.dateTime = when.toISOString();
        // The capture-to-display lag: how fresh live images are here (docs/scaling.md).
        const lag = Number.isFinite(shown.lagMs) ? `, shown ${(shown.lagMs / 1000).toFixed(1)} s later` : "";
        el.updated.title = `captured ${when.toLocaleString()}${lag}`;
      }
    }
    const next = snap.state;
    announce(next, snap);
    if (document.body.dataset.state !== next) {
      document.body.dataset.state = next;
    }
    state = next;
    setText(el.state, LABELS[next]);
    // The age of what the viewer sees: the frame on screen, else the manifest's.
    const capturedMs = shown ? shown.capturedMs : m ? m.capturedMs : 0;
    const age = ago(Math.max(0, (snap.now - capturedMs) / 1000));
    let updated = "";
    let notice = "";
    if (next === "live") {
      updated = `updated ${age} ago`;
    } else if (next === "stale") {
      updated = `last image ${age} ago`;
      const at = new Date(capturedMs).toLocaleTimeString();
      notice = `No new image for ${age} (last at ${at}): the camera has stopped publishing.`;
    } else if (next === "unknown") {
      // Not "updated 0 s ago": a frame from the future says nothing about its age.
      const ahead = ago((m.capturedMs - snap.now) / 1000);
      updated = `camera clock ${ahead} ahead`;
      notice = `The camera's clock is ${ahead} ahead of the server's: this image's age is unknown.`;
    } else if (next === "offline") {
      updated = m ? `last image ${age} ago` : "";
      const retry = snap.retryInMs > 0 ? `retrying in ${Math.ceil(snap.retryInMs / 1000)} s` : "retrying";
      notice = `Cannot load the camera: ${snap.error || "no answer"}; ${retry}.`;
    }
    setText(el.updated, updated);
    setText(el.notice, notice);
    setHidden(el.notice, !notice);
  }

  // Copy-paste snippets for the three ways to embed: text only, built from strings.
  function attr(s) {
    return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  function fillSnippets(m, snap) {
    const imgCode = $("snippet-img");
    if (!imgCode || imgCode.textContent) {
      return;
    }
    const title = attr(text(m.title) || "Live camera");
    const fixed =
      m.list.find((e) => e.name === "live800x600.jpeg") || m.list.find((e) => e.width >= 640) || m.list[m.list.length - 1];
    // The loader's own URL for it (m.list holds only what it would load), unversioned.
    const url = new URL(snap.imageUrl(fixed));
    url.search = "";
    const src = attr(url.href);
    const size = `width="${fixed.width}" height="${fixed.height}"`;
    const dir = attr(snap.base);
    setText(imgCode, `<img src="${src}" alt="${title}" ${size}>`);
    setText($("snippet-iframe"), `<iframe src="${dir}embed.html" title="${title}" ${size} style="border:0" loading="lazy"></iframe>`);
    setText(
      $("snippet-script"),
      `<img src="${src}" data-livecam="${dir}" alt="${title}" ${size}>\n<script src="${dir}live-embed.js" defer></script>`,
    );
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[data-copy]");
    const code = button && $(button.dataset.copy);
    if (!code) {
      return;
    }
    const done = (label) => {
      setText(button, label);
      setTimeout(() => setText(button, "Copy"), 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code.textContent).then(
        () => done("Copied"),
        () => done("Select and copy"),
      );
    } else {
      // No clipboard API over plain http: select the text for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done("Press Ctrl+C");
    }
  });

  function start() {
    const view = window.livecam.watch(img, new URL(".", window.location.href).href, {});
    if (!view) {
      return;
    }
    img.addEventListener("livecam", (event) => render(event.detail));
    render(view.snapshot());
    setInterval(() => render(view.snapshot()), 1000); // "updated N s ago" ticks
  }

  if (window.livecam) {
    start();
  } else {
    // A cached index.html from before live-embed.js existed: fetch the engine now.
    const script = document.createElement("script");
    script.src = "live-embed.js";
    script.addEventListener("load", start);
    document.head.append(script);
  }
})();
