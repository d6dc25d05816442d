/*
 * livecam page: the history control under the live image. No dependencies, no build.
 *
 * Shown only when live.json has an "archive" entry. Nothing is fetched while the viewer
 * is on Live: "History" reads archive/days.json, then one day's index.json and its
 * strip, and the archived frames the viewer asks for (immutable, so cached). While
 * history is shown the live image's link leaves the document, which stops its polling
 * (live-embed.js drops views whose image is not in the document); "Live" puts it back
 * and watches it again. The position is kept in the URL fragment, #YYYY-MM-DDTHH:MM in
 * the archive's time zone, so a moment can be shared. Text is set with textContent.
 */
"use strict";

(function livecamHistory() {
  const $ = (id) => document.getElementById(id);
  const full = $("full");
  const liveImg = $("live");
  const pastLink = $("past-link");
  const pastImg = $("past");
  const panel = $("history");
  const openButton = $("history-open");
  if (!full || !liveImg || !pastLink || !pastImg || !panel || !openButton) {
    return;
  }
  const el = {
    day: $("history-day"),
    prev: $("history-prev"),
    next: $("history-next"),
    play: $("history-play"),
    live: $("history-live"),
    time: $("history-time"),
    timelapse: $("history-timelapse"),
    track: $("history-track"),
    strip: $("history-strip"),
    cursor: $("history-cursor"),
    scrub: $("history-scrub"),
    message: $("history-message"),
    announce: $("announce"),
  };

  const DAY = /^\d{4}-\d{2}-\d{2}$/;
  const FRAGMENT = /^#(\d{4}-\d{2}-\d{2})(?:T(\d{2}):(\d{2}))?$/;
  const PLAY_FPS = 10; // the day as a loop: 1,440 frames in under two and a half minutes
  const FETCH_TIMEOUT_MS = 10000;
  const FRAGMENT_DELAY_MS = 300;
  const BLANK = pastImg.getAttribute("src");

  let base = ""; // the camera's directory (where live.json is), ending in "/"
  let archive = null; // {days: URL, timezone, every} from live.json
  let clock = null; // Intl formatter of wall-clock parts in the archive's time zone
  let days = []; // the days that exist, oldest first
  let day = null; // {day, frames: [{ms, secs, url, width, height}], timelapse, strip}
  let index = -1; // the frame on screen (or being loaded)
  let viewing = false;
  let playing = 0; // the timer of the loop
  let wanted = ""; // the URL of the newest frame asked for: older loads are dropped
  let pending = null; // a fragment to go to once the manifest names the archive
  let token = 0; // bumps on every day load: a late answer for another day is dropped
  let fragmentTimer = 0;

  function setText(node, text) {
    if (node && node.textContent !== text) {
      node.textContent = text;
    }
  }

  // A key from an index, as a URL inside the camera's directory, else "".
  function keyUrl(key) {
    if (typeof key !== "string" || !key || key.startsWith("/") || /^[a-z][a-z0-9+.-]*:/i.test(key)) {
      return "";
    }
    try {
      const url = new URL(encodeURI(key).replace(/[?#]/g, encodeURIComponent), base).href;
      return url.startsWith(base) ? url : "";
    } catch (err) {
      return "";
    }
  }

  function formatter(timeZone) {
    const options = {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    };
    try {
      return new Intl.DateTimeFormat("en-US", options);
    } catch (err) {
      return new Intl.DateTimeFormat("en-US", { ...options, timeZone: "UTC" }); // unknown zone
    }
  }

  // The wall clock in the archive's time zone: "2026-12-07", "14:05" and the second of
  // the day, which is where a frame sits on the strip.
  function wall(ms) {
    const parts = {};
    for (const p of clock.formatToParts(new Date(ms))) {
      parts[p.type] = p.value;
    }
    const h = Number(parts.hour) % 24;
    return {
      day: `${parts.year}-${parts.month}-${parts.day}`,
      hhmm: `${String(h).padStart(2, "0")}:${parts.minute}`,
      secs: h * 3600 + Number(parts.minute) * 60 + Number(parts.second),
    };
  }

  function dayLabel(value) {
    const [y, m, d] = value.split("-").map(Number);
    const date = new Date(Date.UTC(y, m - 1, d));
    const options = { timeZone: "UTC", weekday: "short", day: "numeric", month: "short", year: "numeric" };
    return date.toLocaleDateString(undefined, options);
  }

  async function getJson(url) {
    const controller = new AbortController();
    const watchdog = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      // Revalidated, never blindly cached: today's index grows every `every` seconds.
      const response = await fetch(url, { cache: "no-cache", signal: controller.signal });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      return await response.json();
    } catch (err) {
      if (controller.signal.aborted) {
        throw new Error("no answer");
      }
      throw err instanceof SyntaxError ? new Error("malformed") : err;
    } finally {
      clearTimeout(watchdog);
    }
  }

  function message(text) {
    setText(el.message, text);
    el.message.hidden = !text;
  }

  // --- Live <-> history ---------------------------------------------------------------

  function onManifest(detail) {
    const m = detail.manifest;
    if (!m) {
      return;
    }
    base = detail.base;
    const a = m.archive;
    const usable = a !== null && typeof a === "object" && keyUrl(a.days) !== "";
    archive = usable
      ? { days: keyUrl(a.days), timezone: typeof a.timezone === "string" && a.timezone ? a.timezone : "UTC", every: Number(a.every) || 60 }
      : null;
    if (archive) {
      clock = formatter(archive.timezone);
    }
    openButton.hidden = !archive || viewing;
    if (archive && pending) {
      const target = pending;
      pending = null;
      enter(target);
    }
  }

  async function enter(target) {
    if (!archive) {
      return;
    }
    if (!viewing) {
      viewing = true;
      document.body.dataset.mode = "history";
      full.remove(); // its view is dropped at its next poll: no live requests meanwhile
      pastLink.hidden = false;
      panel.hidden = false;
      openButton.hidden = true;
      setText(el.announce, "History");
    }
    message("Loading the archive\u2026");
    try {
      const doc = await getJson(archive.days);
      const list = doc && Array.isArray(doc.days) ? doc.days.filter((d) => typeof d === "string" && DAY.test(d)) : [];
      days = [...new Set(list)].sort();
    } catch (err) {
      message(`Cannot load the archive's days (${err.message}).`);
      return;
    }
    if (!viewing) {
      return; // back on Live meanwhile
    }
    fillDays();
    if (!days.length) {
      message("No archived day yet.");
      return;
    }
    const wantDay = target && target.day;
    // A day that is gone (retention) or not there yet: the nearest one that exists.
    const chosen = wantDay ? days.find((d) => d >= wantDay) || days[days.length - 1] : days[days.length - 1];
    await openDay(chosen, target && chosen === wantDay ? target.secs : null);
  }

  function leave() {
    if (!viewing) {
      return;
    }
    stop();
    clearTimeout(fragmentTimer);
    viewing = false;
    wanted = "";
    token += 1;
    delete document.body.dataset.mode;
    pastLink.hidden = true;
    panel.hidden = true;
    pastLink.before(full);
    openButton.hidden = !archive;
    if (window.location.hash && FRAGMENT.test(window.location.hash)) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    setText(el.announce, "Live image");
    window.livecam.watch(liveImg, base, {}); // back in the document: polled at once
    openButton.focus();
  }

  function fillDays() {
    el.day.replaceChildren(...days.slice().reverse().map((d) => new Option(dayLabel(d), d)));
  }

  // --- One day -----------------------------------------------------------------------

  function parseDay(doc, name) {
    if (!doc || typeof doc !== "object" || !Array.isArray(doc.frames)) {
      throw new Error("malformed");
    }
    const frames = [];
    for (const f of doc.frames) {
      const ms = f && typeof f.t === "string" ? Date.parse(f.t) : NaN;
      const url = f ? keyUrl(f.key) : "";
      if (Number.isNaN(ms) || !url) {
        continue;
      }
      const w = wall(ms);
      frames.push({ ms, secs: w.secs, hhmm: w.hhmm, url, width: Number(f.width) || 0, height: Number(f.height) || 0 });
    }
    frames.sort((a, b) => a.ms - b.ms);
    return { day: name, frames, timelapse: keyUrl(doc.timelapse), strip: keyUrl(doc.strip) };
  }

  // Opens day `name` at the frame nearest to second `secs` of it, else at the frame
  // `pick(frames)` names, else at its newest frame.
  async function openDay(name, secs, pick) {
    stop();
    const mine = (token += 1);
    el.day.value = name;
    message("Loading\u2026");
    let loaded;
    try {
      // Beside days.json: archive/YYYY/MM/DD/index.json.
      const url = new URL(`${name.replace(/-/g, "/")}/index.json`, archive.days).href;
      loaded = parseDay(await getJson(url), name);
    } catch (err) {
      if (mine === token) {
        message(`Cannot load ${dayLabel(name)} (${err.message}).`);
      }
      return;
    }
    if (mine !== token || !viewing) {
      return;
    }
    day = loaded;
    el.strip.hidden = !day.strip;
    // Today's strip grows with its index: a new URL only when the index did.
    el.strip.src = day.strip ? `${day.strip}?n=${day.frames.length}` : BLANK;
    el.timelapse.hidden = !day.timelapse;
    if (day.timelapse) {
      el.timelapse.href = day.timelapse;
    }
    if (!day.frames.length) {
      index = -1;
      message(`No frame archived on ${dayLabel(name)}.`);
      return;
    }
    message("");
    const picked = pick ? pick(day.frames) : -1;
    if (secs !== null && secs !== undefined) {
      go(nearest(secs));
    } else {
      go(picked >= 0 ? picked : day.frames.length - 1);
    }
  }

  // The frame nearest to a second of the day.
  function nearest(secs) {
    let best = 0;
    day.frames.forEach((f, i) => {
      if (Math.abs(f.secs - secs) < Math.abs(day.frames[best].secs - secs)) {
        best = i;
      }
    });
    return best;
  }

  // Show frame i: the position moves at once, the image once it is decoded. `moving`:
  // playing or dragging, when the URL follows only once the position rests.
  function go(i, moving) {
    if (!day || !day.frames.length) {
      return Promise.resolve();
    }
    index = Math.max(0, Math.min(day.frames.length - 1, i));
    const frame = day.frames[index];
    el.cursor.style.left = `${((frame.secs + 30) / 86400) * 100}%`;
    el.scrub.value = String(frame.secs);
    const label = `${dayLabel(day.day)}, ${frame.hhmm} ${archive.timezone}`;
    el.scrub.setAttribute("aria-valuetext", label);
    setText(el.time, `${frame.hhmm} ${archive.timezone}`);
    el.time.dateTime = new Date(frame.ms).toISOString();
    el.prev.disabled = index === 0;
    // The newest day's last frame may not be its last for long (step reads it again).
    el.next.disabled = index === day.frames.length - 1 && day.day !== days[days.length - 1];
    // Chromium asks for the favicon again on every change of the URL, which playing or
    // dragging would turn into a stream: then it is written once the position rests.
    const fragment = `#${day.day}T${frame.hhmm}`;
    const write = () => {
      if (viewing && window.location.hash !== fragment) {
        window.history.replaceState(null, "", fragment);
      }
    };
    clearTimeout(fragmentTimer);
    if (moving) {
      fragmentTimer = setTimeout(write, FRAGMENT_DELAY_MS);
    } else {
      write();
    }
    return show(frame, label);
  }

  function show(frame, label) {
    wanted = frame.url;
    const image = new Image();
    image.decoding = "async";
    image.src = frame.url;
    return image.decode().then(
      () => {
        if (wanted !== frame.url || !viewing) {
          return;
        }
        pastImg.src = frame.url; // decoded already: an instant swap, no second request
        pastImg.alt = `Archived image, ${label}`;
        pastImg.width = frame.width || image.naturalWidth;
        pastImg.height = frame.height || image.naturalHeight;
        pastLink.href = frame.url;
        pastImg.dataset.frame = frame.url;
      },
      () => {
        if (wanted === frame.url) {
          message(`Cannot load the image of ${frame.hhmm}.`);
        }
      },
    );
  }

  function step(delta) {
    stop();
    if (delta > 0 && day && index === day.frames.length - 1 && day.day === days[days.length - 1]) {
      refresh();
    } else {
      go(index + delta);
    }
  }

  // Past the newest frame of the newest day: its index may have grown since it was
  // read. Asked again at most once per archiving interval.
  let refreshedAt = -Infinity;
  function refresh() {
    if (performance.now() - refreshedAt >= archive.every * 1000) {
      refreshedAt = performance.now();
      const after = day.frames[index].ms;
      openDay(day.day, null, (frames) => frames.findIndex((f) => f.ms > after));
    }
  }

  // --- Playing the day as a loop ------------------------------------------------------

  function stop() {
    if (playing) {
      clearTimeout(playing);
      playing = 0;
    }
    setText(el.play, "Play");
    el.play.setAttribute("aria-pressed", "false");
  }

  function play() {
    if (!day || day.frames.length < 2) {
      return;
    }
    setText(el.play, "Pause");
    el.play.setAttribute("aria-pressed", "true");
    const tick = () => {
      const started = performance.now();
      const next = index >= day.frames.length - 1 ? 0 : index + 1;
      playing = -1; // playing, waiting for the frame: a slow link slows the loop down
      go(next, true).then(() => {
        if (playing) {
          playing = setTimeout(tick, Math.max(0, 1000 / PLAY_FPS - (performance.now() - started)));
        }
      });
    };
    tick();
  }

  // --- Input --------------------------------------------------------------------------

  function fromPointer(event) {
    const rect = el.track.getBoundingClientRect();
    const x = Math.max(0, Math.min(rect.width, event.clientX - rect.left));
    // Column x of the strip is minute x: a frame is drawn at the middle of its minute.
    return rect.width ? (x / rect.width) * 86400 - 30 : 0;
  }

  el.track.addEventListener("pointerdown", (event) => {
    if (!day || !day.frames.length || event.button !== 0) {
      return;
    }
    event.preventDefault();
    stop();
    el.scrub.focus();
    el.track.setPointerCapture(event.pointerId);
    go(nearest(fromPointer(event)));
  });
  el.track.addEventListener("pointermove", (event) => {
    if (day && el.track.hasPointerCapture(event.pointerId)) {
      const i = nearest(fromPointer(event));
      if (i !== index) {
        go(i, true);
      }
    }
  });
  el.track.addEventListener("lostpointercapture", () => day && index >= 0 && go(index));

  const KEYS = {
    ArrowLeft: () => step(-1),
    ArrowDown: () => step(-1),
    ArrowRight: () => step(1),
    ArrowUp: () => step(1),
    PageDown: () => go(nearest(day.frames[index].secs - 3600)),
    PageUp: () => go(nearest(day.frames[index].secs + 3600)),
    Home: () => go(0),
    End: () => go(day.frames.length - 1),
  };

  el.scrub.addEventListener("keydown", (event) => {
    const key = KEYS[event.key];
    if (key && day && day.frames.length && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault(); // a frame, not one second of the range
      stop();
      key();
    }
  });
  // Assistive technology may set the value directly.
  el.scrub.addEventListener("input", () => {
    if (day && day.frames.length) {
      stop();
      go(nearest(Number(el.scrub.value)));
    }
  });

  // Left and right step anywhere on the page while history is shown, except in controls
  // that use those keys themselves.
  document.addEventListener("keydown", (event) => {
    const t = event.target;
    if (!viewing || !day || event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented) {
      return;
    }
    if (t && t.closest && t.closest("input, select, textarea, [contenteditable]")) {
      return;
    }
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      step(event.key === "ArrowLeft" ? -1 : 1);
    }
  });

  openButton.addEventListener("click", () => enter(null).then(() => el.scrub.focus()));
  el.live.addEventListener("click", leave);
  el.prev.addEventListener("click", () => step(-1));
  el.next.addEventListener("click", () => step(1));
  el.play.addEventListener("click", () => (playing ? stop() : play()));
  el.day.addEventListener("change", () => openDay(el.day.value, day && day.frames[index] ? day.frames[index].secs : null));

  function fromFragment(hash) {
    const match = FRAGMENT.exec(hash);
    if (!match) {
      return null;
    }
    const secs = match[2] === undefined ? null : Number(match[2]) * 3600 + Number(match[3]) * 60;
    return { day: match[1], secs };
  }

  window.addEventListener("hashchange", () => {
    const target = fromFragment(window.location.hash);
    if (!target || (day && viewing && `#${day.day}T${(day.frames[index] || {}).hhmm}` === window.location.hash)) {
      return;
    }
    if (archive) {
      enter(target);
    } else {
      pending = target;
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      stop(); // nobody is watching the loop
    }
  });

  pending = fromFragment(window.location.hash);
  liveImg.addEventListener("livecam", (event) => onManifest(event.detail));
})();
