#!/usr/bin/env python3
"""What rendering costs: CPU and wall time per frame against the encode-only bound,
the quality margin, the whole `run` process, and memory over a long run.

    .venv/bin/python scripts/bench.py                     # the table in docs/performance.md
    .venv/bin/python scripts/bench.py --old ../livecam-old  # + another checkout's renderer
    .venv/bin/python scripts/bench.py --process 300       # the real `publisher.py run`
    .venv/bin/python scripts/bench.py --threads 200       # its loop, CPU by thread
    .venv/bin/python scripts/bench.py --soak 2000 --size 4056x3040
    .venv/bin/python scripts/bench.py --quick             # CI: checks that it runs

The table renders a photo-like frame as a Pi camera lends it (YUV420 planes, and the
ISP's lores copy for the small variants; "no lores": without it, as with the command
camera) with the default variants and a fourth, 1280x720. The bound is each
distinct output encoded once, serially, from pixels already resized: what no renderer
can go below. All jobs of a size run in one loop, interleaved, `--runs` times; the
figures are medians with their range. CPU counts every thread of this process.
Needs the test extras (numpy, OpenCV, simplejpeg).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image, ImageChops, ImageStat

from livecam.camera.base import Frame, Planes
from livecam.camera.picam import lores_size
from livecam.camera.yuv import to_image
from livecam.config import DEFAULT_VARIANTS, OverlayConfig, VariantConfig
from livecam.render import Renderer, fast
from livecam.render.overlay import Overlay
from livecam.testimage import photo_like

ROOT = Path(__file__).resolve().parent.parent
FOUR = (*DEFAULT_VARIANTS[:1], VariantConfig("live1280x720.jpeg", 1280, 720), *DEFAULT_VARIANTS[1:])
CONFIGS = {"default": DEFAULT_VARIANTS, "4 variants": FOUR}
SIZES = ((4056, 3040), (2028, 1520), (1920, 1080))
QUICK_SIZES = ((800, 600), (640, 360))
# Goals: the process within this factor of the bound; resizing within 1 dB of Pillow's
# BILINEAR from the full frame; a long run's RSS at most 3 frames (RGBX) above start.
PROCESS_GOAL, PSNR_SLACK, PEAK_FRAMES, GROWTH_LIMIT = 1.4, 1.0, 3.0, 8 << 20
PARTS = 5  # --process: turns per checkout, so that drifting load hits each alike


def _spread(values: list[float]) -> tuple[float, float, float]:
    """Median, min and max."""
    return statistics.median(values), min(values), max(values)


@dataclass
class Samples:
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    def run(self, job: Callable[[], object]) -> None:
        w, c = time.perf_counter(), time.process_time()
        job()
        self.cpu.append(time.process_time() - c)
        self.wall.append(time.perf_counter() - w)

    def ms(self, which: str = "cpu") -> tuple[float, float, float]:
        """Median, min and max in ms."""
        return _spread([x * 1000 for x in getattr(self, which)])


def planes_frame(image: Image.Image, lores: tuple[int, int] | None) -> Frame:
    """`image` as a Pi camera lends it: YUV420 planes, and its lores copy."""
    small = None if lores is None else fast.planes_of(image.resize(lores, Image.Resampling.BOX))
    return Frame(None, datetime.now(UTC), fast.planes_of(image), small)


def old_frame(old: Any, image: Image.Image, lores: tuple[int, int] | None) -> Any:
    """`image` as the old checkout's PiCamera lent it: as planes where its Frame has
    them, else (the first version) RGBX over a numpy buffer with lores planes."""
    if "planes" in getattr(old.Frame, "__dataclass_fields__", {}):
        frame = planes_frame(image, lores)
        return old.Frame(None, frame.captured_at, frame.planes, frame.lores)
    array = np.asarray(image.convert("RGBX")).copy()
    view = Image.frombuffer("RGBX", image.size, array, "raw", "RGBX", 0, 1)
    small = None if lores is None else tuple(planes_frame(image, lores).lores or ())
    return old.Frame(view, datetime.now(UTC), array=array, lores_planes=small)


def load_old(path: str) -> Any:
    """The renderer and Frame of another checkout, imported beside this one's."""
    saved = {k: v for k, v in sys.modules.items() if k == "livecam" or k.startswith("livecam.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, path)
    try:
        render = importlib.import_module("livecam.render")
        base = importlib.import_module("livecam.camera.base")
        config = importlib.import_module("livecam.config")
    finally:
        sys.path.remove(path)
        for k in [k for k in sys.modules if k == "livecam" or k.startswith("livecam.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    return argparse.Namespace(
        Renderer=render.Renderer, Frame=base.Frame, Variant=config.VariantConfig
    )


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(ImageStat.Stat(diff).sum2) / (3 * a.width * a.height)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def overlay_jobs(
    variants: Sequence[VariantConfig], photo: Image.Image, lores: tuple[int, int] | None
) -> tuple[Callable[[], object], Callable[[], object]]:
    """ "new" with the default overlay on every variant, a second later each frame so
    the caption always changes, after a warm-up minute; the planes writable, as a Pi
    camera maps them with the overlay on. And the overlay alone: its text, layout and
    compositing into planes of each size, what "new, overlay" adds but the encoder's
    work on the letters."""
    overlay = Overlay(OverlayConfig(enabled=True), "bench")
    renderer = Renderer(variants, overlay=overlay)
    frame = planes_frame(photo, lores)
    frame.planes, frame.lores = (
        None if p is None else Planes(*(a.copy() for a in p)) for p in (frame.planes, frame.lores)
    )
    sizes = {v.size_for(*photo.size) for v in variants}
    planes = {s: Planes(*(p.copy() for p in fast.planes_of(photo.resize(s)))) for s in sizes}

    def job() -> object:
        frame.captured_at += timedelta(seconds=1)
        return renderer.render(frame)

    def alone() -> object:
        frame.captured_at += timedelta(seconds=1)
        text = overlay.text(frame.captured_at, 1, {})
        for size, pixels in planes.items():
            stamp = overlay.stamp(text, size)
            assert stamp is not None
            fast.stamp(pixels, stamp, True)[1]()
        return text

    for _ in range(60):  # a minute: each digit drawn once per size, as in a long run
        job()
    return job, alone


def quality_margin(photo: Image.Image, variants: Sequence[VariantConfig]) -> float:
    """The worst variant's PSNR against LANCZOS from full, minus that of Pillow's
    BILINEAR from full (both with 4:2:0 chroma); negative is worse."""
    worst = math.inf
    frame = fast.planes_of(photo)
    for v in variants:
        size = v.size_for(*photo.size)
        if size == photo.size:
            continue
        ref = photo.resize(size, Image.Resampling.LANCZOS)
        ours = to_image(fast.shrink(frame, size))
        base = to_image(fast.planes_of(photo.resize(size, Image.Resampling.BILINEAR)))
        worst = min(worst, psnr(ours, ref) - psnr(base, ref))
    return worst


def bound_jobs(photo: Image.Image, variants: Sequence[VariantConfig]) -> list[Callable[[], object]]:
    """Each distinct output encoded once from its resized planes."""
    outputs = {(v.size_for(*photo.size), v.quality) for v in variants}
    pixels = {s: fast.planes_of(photo.resize(s, Image.Resampling.BILINEAR)) for s, _ in outputs}
    return [lambda p=pixels[s], q=q: fast.encode(p, q) for s, q in outputs]


def run_all(jobs: Sequence[Callable[[], object]]) -> None:
    for job in jobs:
        job()


def bench_size(size: tuple[int, int], runs: int, old: Any, log: Callable[[str], None]) -> dict:
    photo = photo_like(*size)
    out: dict[str, Any] = {}
    for name, variants in CONFIGS.items():
        log(f"{size[0]}x{size[1]} {name}...")
        lores = lores_size(size, variants)
        new = Renderer(variants)
        pillow = Renderer(variants, fast=False)
        stamp_job, stamp_alone = overlay_jobs(variants, photo, lores)
        jobs: dict[str, Callable[[], object]] = {
            "bound": partial(run_all, bound_jobs(photo, variants)),
            "new": partial(new.render, planes_frame(photo, lores)),
            "new, no lores": partial(new.render, planes_frame(photo, None)),
            "new, overlay": stamp_job,
            "overlay alone": stamp_alone,
            "pillow": partial(pillow.render, Frame(photo, datetime.now(UTC))),
        }
        if old is not None:
            oldr = old.Renderer(
                [old.Variant(v.name, v.width, v.height, v.quality) for v in variants]
            )
            jobs["old"] = partial(oldr.render, old_frame(old, photo, lores))
            jobs["old, no lores"] = partial(oldr.render, old_frame(old, photo, None))
        samples = {k: Samples() for k in jobs}
        for job in jobs.values():
            job()  # warm up
        for i in range(runs):
            keys = list(jobs)
            for k in keys[i % len(keys) :] + keys[: i % len(keys)]:  # rotate the order
                samples[k].run(jobs[k])
        b = samples["bound"].ms()[0]
        row: dict[str, Any] = {"lores": None if lores is None else f"{lores[0]}x{lores[1]}"}
        for k, s in samples.items():
            cpu, wall = s.ms("cpu"), s.ms("wall")
            row[k] = {
                "cpu_ms": [round(x, 2) for x in cpu],
                "wall_ms": round(wall[0], 2),
                "cpu_per_bound": round(cpu[0] / b, 3),
            }
        row["psnr_margin_db"] = round(quality_margin(photo, variants), 2)
        out[name] = row
    return out


def table(results: dict[str, dict]) -> str:
    head = f"{'capture':>10} {'config':<11} {'job':<14} {'CPU (range)':>22} {'wall':>8}"
    head += f" {'CPU/bound':>9}"
    lines = [head, "-" * len(head)]
    for size, configs in results.items():
        for name, row in configs.items():
            for k, v in row.items():
                if isinstance(v, dict):
                    med, lo, hi = v["cpu_ms"]
                    lines.append(
                        f"{size:>10} {name:<11} {k:<14} {med:>7.1f} ({lo:5.1f}-{hi:5.1f}) ms"
                        f" {v['wall_ms']:>5.1f} ms {v['cpu_per_bound']:>8.2f}x"
                    )
            margin = row["psnr_margin_db"]
            lines.append(
                f"{size:>10} {name:<11} lores {row['lores']}, PSNR margin {margin:+.2f} dB"
            )
    return "\n".join(lines)


# --- the whole process -------------------------------------------------------------------


def process_config(directory: str, size: tuple[int, int], interval: float) -> str:
    variants = "".join(
        f'\n[[variants]]\nname = "{v.name}"\n'
        + (f"width = {v.width}\nheight = {v.height}\n" if v.width else "")
        for v in FOUR
    )
    return (
        f'[camera]\nsource = "test"\nwidth = {size[0]}\nheight = {size[1]}\ninterval = {interval}\n'
        f'{variants}\n[target]\nkind = "local"\npath = "{directory}/live"\n'
    )


def cpu_seconds(pid: int) -> float:
    """utime + stime of all the process's threads (/proc/PID/stat counts them all)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def published_seq(directory: str) -> int:
    try:
        return int(json.loads(Path(directory, "live", "live.json").read_text())["seq"])
    except (OSError, ValueError, KeyError):
        return 0


def run_process(
    root: Path, frames: int, size: tuple[int, int], meanwhile: Callable[[], object]
) -> tuple[int, float]:
    """`publisher.py run` of checkout `root` (test camera, local target on tmpfs, 4
    variants, interval 0.1 s): frames published and CPU ms per frame, over `frames`
    frames after a warm-up. `meanwhile` runs a few times a second, so that what it
    times sees the same load on the machine."""
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108 - mkdtemp's parent
    directory = tempfile.mkdtemp(prefix="livecam-bench-", dir=shm)
    config = Path(directory, "config.toml")
    config.write_text(process_config(directory, size, 0.1))
    child = subprocess.Popen(
        [sys.executable, str(root / "publisher.py"), "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        warm = 5
        cpu: dict[int, tuple[int, float]] = {}  # frame mark -> (seq seen, CPU seconds)
        deadline = time.monotonic() + 60 + frames
        next_bound = time.monotonic()
        while len(cpu) < 2 and time.monotonic() < deadline and child.poll() is None:
            seq = published_seq(directory)
            for at in (warm, warm + frames):
                if seq >= at and at not in cpu:
                    cpu[at] = (seq, cpu_seconds(child.pid))
            if cpu and time.monotonic() >= next_bound:
                # The process paused meanwhile: neither contends with the other.
                child.send_signal(signal.SIGSTOP)
                try:
                    meanwhile()
                finally:
                    child.send_signal(signal.SIGCONT)
                next_bound = time.monotonic() + 0.3
            time.sleep(0.002)
        if len(cpu) < 2:
            raise RuntimeError(f"{root}/publisher.py run did not publish the frames in time")
    finally:
        child.terminate()
        child.wait(timeout=30)
        subprocess.run(["rm", "-rf", directory], check=False)
    (seq0, cpu0), (seq1, cpu1) = cpu[warm], cpu[warm + frames]
    return seq1 - seq0, (cpu1 - cpu0) * 1000 / (seq1 - seq0)


def process(
    frames: int,
    size: tuple[int, int],
    roots: dict[str, Path],
    log: Callable[[str], None],
) -> dict:
    """Each checkout's process in `PARTS` turns, beside the bound for the test camera's
    frame, timed meanwhile in this process: per turn the ratio of the process's CPU to
    the bound's median in that turn (so that drifting load on the machine hits both
    alike), and the medians and ranges of those."""
    from livecam.camera.testpattern import TestPatternCamera

    with TestPatternCamera(*size).capture() as frame:
        assert frame.image is not None
        bound = bound_jobs(frame.image.convert("RGB"), FOUR)
    per_frame: dict[str, list[float]] = {name: [] for name in roots}
    ratios: dict[str, list[float]] = {name: [] for name in roots}
    published = 0
    everything = Samples()
    for part in range(PARTS):
        for name, root in roots.items():
            timing = Samples()
            n, ms = run_process(
                root, -(-frames // PARTS), size, partial(timing.run, partial(run_all, bound))
            )
            published += n
            if not timing.cpu:  # a short turn: it ended before the first timing
                timing.run(partial(run_all, bound))
            b = timing.ms()[0]
            everything.cpu += timing.cpu
            per_frame[name].append(ms)
            ratios[name].append(ms / b)
            log(f"process {name}, part {part + 1}: {ms:.2f} ms CPU per frame, bound {b:.2f} ms")
    out: dict[str, Any] = {
        "size": f"{size[0]}x{size[1]}",
        "frames": published,
        "bound_ms": round(everything.ms()[0], 2),
    }
    for name, values in per_frame.items():
        out[name] = {
            "cpu_ms_per_frame": [round(x, 2) for x in _spread(values)],
            "ratio": [round(x, 3) for x in _spread(ratios[name])],
        }
    out["ok"] = out["new"]["ratio"][0] <= PROCESS_GOAL
    return out


def thread_cpu() -> dict[str, float]:
    """CPU seconds (utime + stime) of each live thread of this process but the main
    one (the bench's own), by name."""
    out = {}
    for t in threading.enumerate():
        if t is threading.main_thread():
            continue
        try:
            stat = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[t.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


class Timed:
    """CPU seconds of the calling thread spent in some functions, by label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.thread_time() - t

        return timed


def threads(frames: int, size: tuple[int, int]) -> dict[str, Any]:
    """The loop of --process run in this process: CPU per published frame of each of
    its threads ("loop": everything from capture to the manifest; "camera": the test
    camera), and the loop's share in encoding, resizing and writing the files, over
    `frames` frames after a warm-up."""
    from livecam.camera import open_camera
    from livecam.config import CameraConfig, Config, SiteConfig, TargetConfig
    from livecam.loop import Publisher
    from livecam.targets import open_target

    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108 - mkdtemp's parent
    directory = tempfile.mkdtemp(prefix="livecam-bench-", dir=shm)
    cfg = Config(
        camera=CameraConfig(source="test", width=size[0], height=size[1], interval=0.1),
        variants=FOUR,
        target=TargetConfig(kind="local", path=directory),
        site=SiteConfig(title="bench"),
    )
    target = open_target(cfg.target)
    timed = Timed()
    target.publish = timed.wrap("loop: writing", target.publish)  # type: ignore[method-assign]
    originals = fast.encode, fast.shrink
    fast.encode = timed.wrap("loop: encoding", fast.encode)
    fast.shrink = timed.wrap("loop: resizing", fast.shrink)
    publisher = Publisher(cfg, lambda: open_camera(cfg.camera, FOUR), target)
    stop = threading.Event()
    loop = threading.Thread(target=publisher.run, args=(stop,), name="loop")
    loop.start()
    try:
        marks = []
        for at in (5, 5 + frames):
            while publisher.seq < at and loop.is_alive():
                time.sleep(0.01)
            marks.append((publisher.seq, {**thread_cpu(), **timed.seconds}))
    finally:
        stop.set()
        loop.join()
        publisher.close()
        fast.encode, fast.shrink = originals
        subprocess.run(["rm", "-rf", directory], check=False)
    (seq0, cpu0), (seq1, cpu1) = marks
    n = max(1, seq1 - seq0)
    ms = {k: round((v - cpu0.get(k, 0.0)) * 1000 / n, 2) for k, v in cpu1.items()}
    ms["all"] = round(sum(v for k, v in ms.items() if ":" not in k), 2)
    return {"size": f"{size[0]}x{size[1]}", "frames": n, "cpu_ms_per_frame": ms}


# --- memory over a long run ----------------------------------------------------------------


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def soak(size: tuple[int, int], frames: int) -> dict[str, Any]:
    """RSS over `frames` frames of the real loop (test camera, local target, interval
    0): peak above the baseline, and growth from the first tenth to the last."""
    import gc

    from livecam.camera import open_camera
    from livecam.config import CameraConfig, Config, PublishConfig, SiteConfig, TargetConfig
    from livecam.loop import Publisher
    from livecam.targets import open_target

    directory = tempfile.mkdtemp(prefix="livecam-soak-")
    cfg = Config(
        camera=CameraConfig(source="test", width=size[0], height=size[1], interval=0.0),
        variants=FOUR,
        target=TargetConfig(kind="local", path=directory),
        publish=PublishConfig(status_interval=0.0),
        site=SiteConfig(title="bench"),
    )
    gc.collect()
    baseline = rss()
    samples: list[tuple[int, int]] = []
    stop = threading.Event()
    publisher = Publisher(cfg, lambda: open_camera(cfg.camera), open_target(cfg.target))
    every = max(1, frames // 100)

    def watch() -> None:
        seen = 0
        while not stop.is_set():
            if publisher.seq != seen:
                seen = publisher.seq
                if seen % every == 0:
                    samples.append((seen, rss()))
                if seen >= frames:
                    stop.set()
            time.sleep(0.002)

    start = time.perf_counter()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        publisher.run(stop)
    finally:
        stop.set()
        publisher.close()
        watcher.join()
        subprocess.run(["rm", "-rf", directory], check=False)
    frame_bytes = size[0] * size[1] * 4
    warm = [r for seq, r in samples if seq <= max(every, frames // 10)] or [0]
    late = [r for seq, r in samples if seq > frames - frames // 10] or [0]
    growth = statistics.median(late) - statistics.median(warm)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    return {
        "size": f"{size[0]}x{size[1]}",
        "frames": frames,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_above_baseline_mib": round(peak / 2**20, 1),
        "peak_frames": round(peak / frame_bytes, 2),
        "growth_mib": round(growth / 2**20, 2),
        "ok": peak < PEAK_FRAMES * frame_bytes and growth < GROWTH_LIMIT,
    }


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, few runs: checks it runs")
    p.add_argument("--runs", type=int, default=9, help="runs per job (median, range)")
    p.add_argument("--sizes", help="capture sizes for the table (default: 12 MP, 2028x1520, 1080p)")
    p.add_argument("--old", metavar="CHECKOUT", help="also time the renderer of this checkout")
    p.add_argument("--process", type=int, metavar="N", help="`publisher.py run`, N frames")
    p.add_argument("--threads", type=int, metavar="N", help="CPU per thread of --process's loop")
    p.add_argument("--soak", type=int, metavar="N", help="RSS over N frames of the loop")
    p.add_argument("--size", default="1920x1080", help="capture size for --process, --soak")
    args = p.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    default_sizes = (
        "" if args.process or args.soak or args.threads else ",".join(f"{w}x{h}" for w, h in SIZES)
    )
    sizes = [parse_size(s) for s in (args.sizes or default_sizes).split(",") if s]
    runs, loop_size = args.runs, parse_size(args.size)
    if args.quick:
        sizes, runs, loop_size = list(QUICK_SIZES), 2, (640, 360)
        args.process, args.soak = args.process or 10, args.soak or 20
        args.threads = args.threads or 10
    old = load_old(args.old) if args.old else None
    report: dict[str, Any] = {"runs": runs, "cpus": os.cpu_count()}
    results = {f"{w}x{h}": bench_size((w, h), runs, old, log) for w, h in sizes}
    if results:
        print(table(results))
        report["sizes"] = results
    if args.process:
        roots = {"new": ROOT} if not args.old else {"new": ROOT, "old": Path(args.old)}
        r = report["process"] = process(args.process, loop_size, roots, log)
        for name in roots:
            med, lo, hi = r[name]["cpu_ms_per_frame"]
            ratio, rlo, rhi = r[name]["ratio"]
            print(
                f"\nprocess {name} {r['size']}, 4 variants, interval 0.1 s: {med:.2f} ms CPU "
                f"({lo:.2f}-{hi:.2f}) per published frame; bound {r['bound_ms']:.2f} ms -> "
                f"{ratio:.2f}x ({rlo:.2f}-{rhi:.2f}; goal <= {PROCESS_GOAL}x)"
            )
    if args.threads:
        t = report["threads"] = threads(args.threads, loop_size)
        split = ", ".join(f"{k} {v:.2f}" for k, v in sorted(t["cpu_ms_per_frame"].items()))
        print(f"\nthreads {t['size']}, ms CPU per published frame: {split}")
    if args.soak:
        s = report["soak"] = soak(loop_size, args.soak)
        print(
            f"\nsoak {s['size']}: {s['frames']} frames in {s['seconds']} s; RSS peak "
            f"+{s['peak_above_baseline_mib']} MiB ({s['peak_frames']} frames' worth), growth "
            f"{s['growth_mib']:+.2f} MiB -> {'ok' if s['ok'] else 'FAIL'}"
        )
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
