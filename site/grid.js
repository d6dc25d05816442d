/*
 * livecam grid page (published by `publisher.py site`): one tile per camera, each a
 * link to the camera's own page with its live image, name and state. No dependencies,
 * no build step. The images are driven by live-embed.js (window.livecam), loaded
 * first: each tile is watched paused, and resumed only while it is on screen, so
 * tiles out of sight (or in a hidden tab) make no request. The engine picks the
 * smallest variant that covers the tile. Text is set with textContent only.
 */
"use strict";

(function livecamGrid() {
  const LABELS = { connecting: "connecting", live: "live", stale: "stale", unknown: "age unknown", offline: "offline" };

  // One tile: its view of the camera and what it shows.
  class Tile {
    constructor(li, img) {
      this.li = li;
      this.img = img;
      this.state = li.querySelector(".state");
      this.time = li.querySelector(".tile-time");
      this.view = null;
      this.visible = false;
      // After a pause the camera's last state is old news (a camera that was live may
      // look stale): the tile keeps what it showed until a poll answers again.
      this.pollsAtResume = -1;
    }

    start() {
      this.view = window.livecam.watch(this.img, this.img.dataset.base, {
        label: this.li.querySelector(".tile-name").textContent,
        paused: true,
      });
      if (!this.view) {
        this.show("offline", null);
        return;
      }
      this.img.addEventListener("livecam", (event) => this.render(event.detail));
    }

    setVisible(visible) {
      if (!this.view || visible === this.visible) {
        return;
      }
      this.visible = visible;
      if (visible) {
        this.pollsAtResume = this.view.snapshot().polls;
        this.view.resume();
      } else {
        this.view.pause();
      }
    }

    render(snap) {
      if (!this.visible || (snap.polls === this.pollsAtResume && snap.state !== "connecting")) {
        return;
      }
      this.pollsAtResume = -1;
      this.show(snap.state, snap.shown);
    }

    show(state, shown) {
      if (this.li.dataset.state !== state) {
        this.li.dataset.state = state;
        this.state.textContent = LABELS[state] || state;
      }
      if (shown) {
        this.img.classList.add("shown");
        const when = new Date(shown.capturedMs);
        const text = when.toLocaleTimeString();
        if (this.time.textContent !== text) {
          this.time.dateTime = when.toISOString();
          this.time.textContent = text;
        }
      }
    }
  }

  function start() {
    const tiles = new Map(); // img -> Tile
    for (const img of document.querySelectorAll(".tile-img[data-base]")) {
      const tile = new Tile(img.closest(".tile"), img);
      tiles.set(img, tile);
      tile.start();
    }
    if (!("IntersectionObserver" in window)) {
      tiles.forEach((tile) => tile.setVisible(true));
      return;
    }
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        tiles.get(entry.target).setVisible(entry.isIntersecting);
      }
    });
    tiles.forEach((tile, img) => observer.observe(img));
  }

  if (!window.livecam) {
    return; // live-embed.js did not load: the tiles stay links to each camera
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
