/*
 * livecam embed script: turns <img data-livecam="https://host/path/"> on any site into
 * a live, self-refreshing image. One file, no dependencies, no build step:
 *
 *   <img src="https://cam.example.com/live/live800x600.jpeg" data-livecam="https://cam.example.com/live/"
 *        alt="Our roof camera" width="800" height="600">
 *   <script src="https://cam.example.com/live/live-embed.js" defer></script>
 *
 * Without the script (or without CORS) the img stays the fixed image. With it, the
 * script polls live.json beside the images (the host must allow cross-origin GET, see
 * docs/embedding.md), loads the smallest image that covers the element, off-screen,
 * and swaps it in once decoded: no flicker, no broken-image icon. The element gets
 * data-livecam-state="connecting|live|stale|unknown|offline" for styling (unknown: the
 * camera's clock is ahead, so the frame's age cannot be told), and a "livecam"
 * event on every change. The live page (live.js) drives its image with this too,
 * through window.livecam.watch().
 *
 * Requests: one manifest request per camera in flight at most, however many images
 * show it; none while the tab is hidden; one poll per `interval` from the manifest,
 * timed just after the next frame is due once the script has learnt when frames
 * appear (one retry when one is late); exponential backoff with jitter on errors; an
 * image only when the frame changed, from its immutable per-frame key when the
 * manifest names one (safe behind any CDN), else as `name?v=SEQ`.
 *
 * A page with many cameras (grid.js) watches each with { paused: true } and calls
 * view.resume() / view.pause() as the image scrolls in and out of sight: a camera
 * whose views are all paused makes no request.
 */
"use strict";

(function livecamEmbed() {
  if (window.livecam && typeof window.livecam.watch === "function") {
    return; // the script is on the page twice
  }

  const MIN_POLL_MS = 1000; // never poll faster, whatever the manifest says
  const MAX_POLL_MS = 60000; // poll at least once a minute (the offline state needs it)
  const MIN_GAP_MS = 250; // between the end of one request and the next
  const MAX_BACKOFF_MS = 30000;
  const FETCH_TIMEOUT_MS = 10000;
  const IMAGE_TIMEOUT_MS = 30000;
  const OFFLINE_AFTER = 2; // failed polls in a row; one blip is not "offline"
  const STALE_MIN_S = 10; // as the publisher's site.stale_after default: max(3 × interval, 10 s)
  // A quoted MD5 of the body: S3, R2, B2, MinIO (single-part) and the demo server.
  // Only such a validator is safe for a manifest rewritten within one second: nginx's
  // "mtime-size" ETag has 1 s resolution and would call a new manifest unchanged.
  const CONTENT_ETAG = /^"[0-9a-f]{32}"$/;
  // Phase lock: how sure of the moment frames appear before polling just after it,
  // how late after it to poll, and how far a single late frame moves the estimate.
  const LOCK_PRECISION_MS = 130;
  const LOCK_MARGIN_MS = 50;
  const LOCK_STEP_MS = 200;

  const cameras = new Map(); // manifest URL -> Camera
  const hidden = () => document.visibilityState === "hidden";

  class HttpError extends Error {
    constructor(status) {
      super(`HTTP ${status}`);
      this.status = status;
    }
  }

  function finite(value, fallback) {
    const n = Number(value);
    return Number.isFinite(n) ? n : fallback;
  }

  // The manifest, checked: anything else is an error, never half-rendered. Images the
  // loader would refuse (`loadable`) are dropped, so nothing shows or offers them.
  function parse(text, loadable) {
    const m = JSON.parse(text);
    if (
      m === null ||
      typeof m !== "object" ||
      !Number.isInteger(m.seq) ||
      typeof m.captured_at !== "string" ||
      Number.isNaN(Date.parse(m.captured_at)) ||
      m.images === null ||
      typeof m.images !== "object"
    ) {
      throw new SyntaxError("malformed manifest");
    }
    m.capturedMs = Date.parse(m.captured_at);
    const images = Object.entries(m.images)
      .filter(([name, e]) => name && e && finite(e.width, 0) > 0 && finite(e.height, 0) > 0)
      .map(([name, e]) => ({
        name,
        width: Number(e.width),
        height: Number(e.height),
        seq: Number.isInteger(e.seq) ? e.seq : m.seq,
        // The frame this image shows (a variant on `every` lags); a manifest from
        // before per-image times has only the newest frame's.
        capturedMs: Date.parse(typeof e.captured_at === "string" ? e.captured_at : "") || m.capturedMs,
        // The frame's immutable copy (publish.frame_keys), relative to the manifest.
        key: typeof e.key === "string" ? e.key : "",
      }))
      .filter(loadable)
      .sort((a, b) => a.width - b.width || a.height - b.height);
    if (!images.length) {
      throw new SyntaxError("manifest names no image");
    }
    m.list = images; // smallest first
    return m;
  }

  function describe(err, aborted, sameOrigin) {
    if (aborted) {
      return `no answer within ${FETCH_TIMEOUT_MS / 1000} s`;
    }
    if (err instanceof HttpError) {
      if (err.status === 404) {
        return "live.json not found (HTTP 404)";
      }
      if (err.status === 401 || err.status === 403) {
        return `access denied (HTTP ${err.status})`;
      }
      return `server error (HTTP ${err.status})`;
    }
    if (err instanceof SyntaxError) {
      return "live.json is malformed";
    }
    if (navigator.onLine === false) {
      return "this device is offline";
    }
    return sameOrigin ? "cannot reach the server" : "cannot reach the server, or it does not allow this site (CORS)";
  }

  // When this viewer sees frames appear, learnt from its own polls so that no clock
  // needs to agree with another: for each frame, lo < (this page's clock when it
  // appeared) - (the camera's clock when it was captured) <= hi. A poll that finds a
  // new frame bounds it from above, one that finds none from below. Frames are captured
  // on a grid of `interval`, so the next one is due at the last capture + interval, and
  // a poll at that + hi finds it just after it appeared. While the range is wide, a poll
  // in its middle halves it (binary search); a late frame gets one retry.
  class PhaseLock {
    constructor() {
      this.reset(0);
    }

    reset(interval) {
      this.interval = interval; // ms
      this.lo = -Infinity;
      this.hi = Infinity;
      this.lastOk = -Infinity; // start of the last poll that was answered
      this.due = NaN; // capture time (camera clock) of the frame polled for
      this.target = Infinity; // the page time it was polled for
      this.tries = 0; // polls since `target` that did not find it
      this.missAt = -Infinity; // start of the latest of them
      this.confident = false; // the poll for it was at hi + margin, not a probe
      this.misses = 0; // confident polls in a row that were too early
      this.streak = 0; // frames due since the last one that came: no retries then
    }

    // Called with every manifest that names a new frame, before `polled`.
    arrived(m, end) {
      const interval = Math.max(0, finite(m.interval, 0)) * 1000;
      if (interval !== this.interval) {
        this.reset(interval); // another config: learn afresh
      }
      const captured = m.capturedMs;
      const hi = end - captured;
      let lo = Math.max(this.lastOk - captured, hi - interval);
      if (this.tries && Math.abs(this.due - captured) < interval / 4) {
        lo = Math.max(lo, this.missAt - captured); // it was not there at the last try
      }
      if (this.tries && this.confident) {
        this.misses += 1;
      } else if (this.confident) {
        this.misses = 0;
      }
      if (!(lo < hi)) {
        // The camera's clock stepped: nothing to learn from this frame.
      } else if (this.hi === Infinity || (lo >= this.hi && this.misses >= 2)) {
        this.lo = lo; // the first bounds, or frames moved for good: learn afresh
        this.hi = hi;
        this.misses = 0;
      } else if (lo >= this.hi) {
        this.lo = lo; // later than thought, once: move up a step
        this.hi = Math.min(hi, lo + LOCK_STEP_MS);
      } else if (hi <= this.lo) {
        this.hi = hi; // earlier than thought
        this.lo = Math.max(lo, hi - LOCK_STEP_MS);
      } else {
        this.lo = Math.max(this.lo, lo);
        this.hi = Math.min(this.hi, hi);
      }
      this.due = captured + interval;
      this.target = Infinity;
      this.tries = 0;
      this.streak = 0;
    }

    // Called after every poll; `start` is when it began.
    polled(ok, start) {
      if (!ok) {
        return;
      }
      if (start >= this.target) {
        this.tries += 1; // the frame polled for was not there yet
        this.missAt = start;
      }
      this.lastOk = start;
    }

    // When to poll next (page clock), or null for the plain cadence.
    next(m, lastStart) {
      const interval = this.interval;
      if (!m || this.hi === Infinity || interval < MIN_POLL_MS || interval !== finite(m.interval, 0) * 1000) {
        return null;
      }
      const canRetry = interval >= 2 * MIN_POLL_MS && this.streak === 0;
      if (this.tries > (canRetry ? 1 : 0)) {
        this.due += interval; // skipped (skip_unchanged, an outage) or very late
        this.tries = 0;
        this.streak += 1;
      }
      const probe = this.hi - this.lo > LOCK_PRECISION_MS && interval >= 2 * MIN_POLL_MS && !this.tries;
      if (!this.tries) {
        this.confident = !probe; // a retry after a probe is no confident miss
      }
      let target = this.due + (probe ? (this.lo + this.hi) / 2 : this.hi + LOCK_MARGIN_MS);
      while (!this.tries && target <= lastStart) {
        this.due += interval; // already polled past it (a wake-up): the next one
        target += interval;
      }
      this.target = target;
      return target;
    }
  }

  // One camera (one live.json): polls it, shares its images among its views.
  class Camera {
    constructor(base) {
      this.base = base; // the directory, ending in "/"
      this.url = new URL("live.json", base).href;
      this.sameOrigin = new URL(this.url).origin === window.location.origin;
      this.views = new Set();
      this.manifest = null;
      this.etag = ""; // content-derived ETag of this.manifest, sent as If-None-Match
      this.revalidate = false; // cross-origin: let the browser revalidate (no preflight)
      this.failures = 0;
      this.error = "";
      this.controller = null; // the manifest request in flight
      this.timer = 0;
      this.dueAt = 0; // performance.now() of the next poll
      this.lastStart = -Infinity;
      this.clockOffset = 0; // the server's clock minus ours, when they differ by > 2 s
      this.loads = new Map(); // image URL -> Promise of a decoded image
      this.lastState = "";
      this.staleTimer = 0;
      this.polls = 0; // answered or failed manifest requests, for views that resume
      this.lock = new PhaseLock();
    }

    now() {
      return Date.now() + this.clockOffset;
    }

    period() {
      const seconds = this.manifest ? Math.max(0, finite(this.manifest.interval, 2)) : 2;
      return Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, seconds * 1000));
    }

    backoff() {
      const cap = Math.max(MAX_BACKOFF_MS, this.period());
      const delay = Math.min(cap, MIN_POLL_MS * 2 ** (this.failures - 1));
      // Jitter, so that the viewers of a host that comes back do not all return at once.
      return Math.max(MIN_POLL_MS, Math.min(cap, delay * (0.8 + 0.4 * Math.random())));
    }

    staleAfter() {
      const m = this.manifest;
      const configured = finite(m.stale_after, 0);
      return configured > 0 ? configured : Math.max(3 * Math.max(0, finite(m.interval, 2)), STALE_MIN_S);
    }

    state() {
      if (this.failures >= OFFLINE_AFTER || (this.failures > 0 && !this.manifest)) {
        return "offline";
      }
      if (!this.manifest) {
        return "connecting";
      }
      const age = (this.now() - this.manifest.capturedMs) / 1000;
      if (age < -this.staleAfter()) {
        return "unknown"; // the camera's clock is ahead of the server's: no telling how old
      }
      return age > this.staleAfter() ? "stale" : "live";
    }

    // Views whose element left the document are dropped; no views, no polling; only
    // paused views, no polling either.
    prune() {
      for (const view of this.views) {
        if (!view.img.isConnected) {
          this.views.delete(view);
        }
      }
      if (!this.views.size) {
        clearTimeout(this.timer);
        clearTimeout(this.staleTimer);
        this.timer = 0;
        cameras.delete(this.url);
      }
      return [...this.views].some((view) => !view.paused);
    }

    // Poll now, unless a request is in flight or the last one started under 1 s ago.
    wake() {
      if (this.controller || hidden()) {
        return;
      }
      const wait = this.lastStart + MIN_POLL_MS - performance.now();
      if (wait > 0) {
        this.arm(wait);
      } else {
        this.poll();
      }
    }

    sleep() {
      clearTimeout(this.timer);
      this.timer = 0;
    }

    arm(delay) {
      clearTimeout(this.timer);
      this.dueAt = performance.now() + delay;
      this.timer = setTimeout(() => this.poll(), delay);
    }

    schedule() {
      this.sleep();
      if (hidden() || !this.prune()) {
        return;
      }
      const now = performance.now();
      let at = now + this.backoff(); // backoff counts from the end of the last poll
      if (!this.failures) {
        // Normal cadence counts from the start of the last poll; the phase lock moves
        // it to just after the next frame is due, never closer than the limits allow.
        const locked = this.lock.next(this.manifest, this.lastStart);
        at = locked === null ? this.lastStart + this.period() : Math.min(locked, this.lastStart + MAX_POLL_MS);
        at = Math.max(at, this.lastStart + MIN_POLL_MS, now + MIN_GAP_MS);
      }
      this.arm(at - now);
    }

    readClock(response) {
      // Ages are computed against the server's clock (the publisher's, for a local
      // target): a viewer whose own clock is off still sees "updated 2 s ago".
      const date = Date.parse(response.headers.get("Date") || "");
      if (Number.isNaN(date)) {
        return;
      }
      const age = finite(response.headers.get("Age"), 0);
      const offset = date + 500 + age * 1000 - Date.now(); // Date has 1 s resolution
      this.clockOffset = Math.abs(offset) > 2000 ? offset : 0;
    }

    async poll() {
      this.sleep();
      if (this.controller || hidden() || !this.prune()) {
        return; // never two requests for the manifest in flight
      }
      const controller = new AbortController();
      this.controller = controller;
      const watchdog = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
      this.lastStart = performance.now();
      let ok = false;
      try {
        const init = { cache: "no-store", signal: controller.signal };
        if (this.sameOrigin && this.etag) {
          // With "no-store" the browser neither adds validators nor hides a 304 from
          // us: sending If-None-Match ourselves keeps an unchanged manifest to headers.
          init.headers = { "If-None-Match": this.etag };
        } else if (this.revalidate) {
          // Cross-origin, a header of our own would cost a CORS preflight per poll;
          // the browser's own revalidation does not.
          init.cache = "no-cache";
        }
        const response = await fetch(this.url, init);
        this.readClock(response);
        if (response.status === 304 && this.manifest && this.etag) {
          // unchanged
        } else if (!response.ok) {
          throw new HttpError(response.status);
        } else {
          const m = parse(await response.text(), (entry) => this.imageUrl(entry) !== "");
          const tag = response.headers.get("ETag") || "";
          const content = CONTENT_ETAG.test(tag);
          this.etag = content && this.sameOrigin ? tag : "";
          this.revalidate = content && !this.sameOrigin;
          if (this.manifest && m.seq !== this.manifest.seq) {
            this.lock.arrived(m, performance.now());
          }
          this.manifest = m;
        }
        this.failures = 0;
        this.error = "";
        ok = true;
      } catch (err) {
        this.failures += 1;
        this.error = describe(err, controller.signal.aborted, this.sameOrigin);
      } finally {
        clearTimeout(watchdog);
        this.controller = null;
        this.polls += 1;
      }
      this.lock.polled(ok, this.lastStart);
      this.schedule();
      this.notify();
    }

    notify() {
      this.lastState = this.state();
      clearTimeout(this.staleTimer);
      if (this.lastState === "live") {
        // Turn stale on time, not on the next 1 s tick.
        const ms = this.manifest.capturedMs + this.staleAfter() * 1000 - this.now();
        this.staleTimer = setTimeout(() => this.tick(), Math.max(0, ms) + 20);
      }
      for (const view of this.views) {
        view.update();
      }
    }

    tick() {
      if (this.state() !== this.lastState) {
        this.notify();
      }
    }

    // A decoded image, loaded once however many views want it.
    load(url) {
      let promise = this.loads.get(url);
      if (!promise) {
        const image = new Image();
        image.decoding = "async";
        let timeout = 0;
        promise = new Promise((resolve, reject) => {
          timeout = setTimeout(() => {
            image.src = ""; // abandon a load that hangs
            reject(new Error("image timeout"));
          }, IMAGE_TIMEOUT_MS);
          image.src = url;
          image.decode().then(() => resolve(image), reject);
        }).finally(() => {
          clearTimeout(timeout);
          this.loads.delete(url);
        });
        this.loads.set(url, promise);
      }
      return promise;
    }

    imageUrl(entry) {
      // A per-frame key never changes, so no cache can answer it with another frame's
      // bytes; the fixed name with ?v=SEQ is safe only where caches key on the query.
      const path = (s) => encodeURI(s).replace(/[?#]/g, encodeURIComponent);
      const url = new URL(entry.key ? path(entry.key) : `${path(entry.name)}?v=${entry.seq}`, this.base).href;
      return url.startsWith(this.base) ? url : ""; // never outside the camera's directory
    }
  }

  // One <img> showing a camera: picks the variant, loads it off-screen, swaps it in.
  class View {
    constructor(img, camera, options) {
      this.img = img;
      this.camera = camera;
      this.label = options.label || "";
      this.shown = null; // {url, entry, capturedMs}
      this.loading = "";
      this.failed = null; // {url, count, until}: an image that would not load
      this.paused = Boolean(options.paused); // out of sight: asks for nothing
    }

    pause() {
      this.paused = true;
      if (!this.camera.prune()) {
        this.camera.sleep();
      }
    }

    resume() {
      if (this.paused) {
        this.paused = false;
        this.camera.wake();
        this.update();
      }
    }

    // The smallest variant that covers the displayed size times the device pixel ratio.
    pick(list) {
      const largest = list[list.length - 1];
      const rect = this.img.getBoundingClientRect();
      const width = rect.width || this.img.width || largest.width;
      const height = rect.height || this.img.height || largest.height;
      const aspect = largest.width / largest.height;
      const fit = window.getComputedStyle(this.img).objectFit;
      let shownWidth = width;
      if (fit === "contain" || fit === "scale-down") {
        shownWidth = Math.min(width, height * aspect);
      } else if (fit === "cover") {
        shownWidth = Math.max(width, height * aspect);
      }
      const need = shownWidth * (window.devicePixelRatio || 1);
      return list.find((e) => e.width >= need - 1) || largest;
    }

    update() {
      const camera = this.camera;
      const m = camera.manifest;
      if (m && !hidden() && !this.loading && !this.paused) {
        const entry = this.pick(m.list);
        const url = camera.imageUrl(entry);
        const shown = this.shown;
        // The same frame already on screen at least this sharp (e.g. the window shrank).
        const covered = shown && shown.entry.seq === entry.seq && shown.entry.width >= entry.width;
        const failed = this.failed && this.failed.url === url && performance.now() < this.failed.until;
        if (url && !covered && !failed && (!shown || url !== shown.url)) {
          this.show(url, entry, entry.capturedMs);
        }
      }
      this.emit();
    }

    show(url, entry, capturedMs) {
      this.loading = url;
      this.camera
        .load(url)
        .then(() => {
          // Capture to display, on the server's clock (the camera's, for a local target).
          this.shown = { url, entry, capturedMs, lagMs: Math.round(this.camera.now() - capturedMs) };
          this.failed = null;
          this.img.src = url; // decoded already: the swap is instant, no second request
          this.img.removeAttribute("srcset");
          const title = this.label || (typeof this.camera.manifest.title === "string" && this.camera.manifest.title) || "Live camera";
          this.img.alt = `${title}: live image captured ${new Date(capturedMs).toLocaleString()}`;
          this.img.dataset.livecamSeq = String(entry.seq);
        })
        .catch(() => {
          // The old image stays. Retry this one later, backing off: a corrupt image
          // should not be downloaded on every poll.
          const count = this.failed && this.failed.url === url ? this.failed.count + 1 : 1;
          const delay = Math.min(MAX_POLL_MS, this.camera.period() * 2 ** count);
          this.failed = { url, count, until: performance.now() + delay };
        })
        .finally(() => {
          this.loading = "";
          this.update(); // a newer frame may have arrived meanwhile
        });
    }

    snapshot() {
      const camera = this.camera;
      return {
        state: camera.state(),
        manifest: camera.manifest,
        error: camera.error,
        failures: camera.failures,
        polls: camera.polls,
        retryInMs: camera.failures && camera.timer ? Math.max(0, camera.dueAt - performance.now()) : 0,
        staleAfter: camera.manifest ? camera.staleAfter() : 0,
        now: camera.now(),
        shown: this.shown,
        base: camera.base,
        imageUrl: (entry) => camera.imageUrl(entry),
      };
    }

    emit() {
      const detail = this.snapshot();
      if (this.img.dataset.livecamState !== detail.state) {
        this.img.dataset.livecamState = detail.state;
      }
      this.img.dispatchEvent(new CustomEvent("livecam", { detail }));
    }
  }

  const views = new WeakMap(); // img -> View

  // Make `img` show the camera published at `base` (a directory URL); returns its view.
  function watch(img, base, options) {
    let view = views.get(img);
    if (view && view.camera.views.has(view) && cameras.get(view.camera.url) === view.camera) {
      return view;
    }
    // New, or back in the document after its camera dropped it (prune): watched afresh.
    let dir;
    try {
      dir = new URL(base, document.baseURI);
    } catch (err) {
      return null;
    }
    if (dir.protocol !== "https:" && dir.protocol !== "http:") {
      return null;
    }
    dir.search = "";
    dir.hash = "";
    if (!dir.pathname.endsWith("/")) {
      dir.pathname += "/";
    }
    const url = new URL("live.json", dir).href;
    let camera = cameras.get(url);
    if (!camera) {
      camera = new Camera(dir.href);
      cameras.set(url, camera);
    }
    if (view) {
      view.camera = camera;
    } else {
      view = new View(img, camera, options || {});
      views.set(img, view);
    }
    camera.views.add(view);
    if (camera.manifest) {
      view.update();
    } else {
      camera.wake();
    }
    return view;
  }

  function upgrade(root) {
    const found = root.matches && root.matches("img[data-livecam]") ? [root] : [];
    if (root.querySelectorAll) {
      found.push(...root.querySelectorAll("img[data-livecam]"));
    }
    for (const img of found) {
      watch(img, img.dataset.livecam, { label: img.getAttribute("alt") || "" });
    }
  }

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => cameras.forEach((c) => c.notify()), 150);
  });
  document.addEventListener("visibilitychange", () => {
    cameras.forEach((c) => (hidden() ? c.sleep() : c.wake()));
  });
  // Back online, back from the back/forward cache, unfrozen: poll at once.
  for (const type of ["online", "pageshow"]) {
    window.addEventListener(type, () => cameras.forEach((c) => c.wake()));
  }
  document.addEventListener("resume", () => cameras.forEach((c) => c.wake()));
  setInterval(() => cameras.forEach((c) => c.tick()), 1000);

  window.livecam = Object.freeze({ watch, upgrade });

  function start() {
    upgrade(document);
    // Images added later (single-page sites) are upgraded too.
    new MutationObserver((records) => {
      for (const record of records) {
        record.addedNodes.forEach((node) => node.nodeType === 1 && upgrade(node));
      }
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
