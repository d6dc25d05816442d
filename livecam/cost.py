"""`cost`: requests, storage and a monthly price estimate per storage provider.

Providers charge per request: 4 objects every second is over 10 million PUTs a month.
The price tables live here, in one place, with the date they were read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from livecam.config import Config
from livecam.frames import PRUNE_EVERY
from livecam.jobs import CHECK_EVERY
from livecam.site import load as load_site

DELETE_BATCH = 1000  # keys per DeleteObjects request

PRICES_AS_OF = "2026-11"
MONTH_SECONDS = 30 * 24 * 3600  # a 30-day month, as the providers' calculators use
JPEG_BYTES_PER_PIXEL = 0.15  # a daylight photo at quality ~85; only sizes storage


@dataclass(frozen=True)
class Provider:
    """A storage provider's published request and storage prices (USD)."""

    name: str
    put_per_million: float
    get_per_million: float
    storage_per_gb_month: float
    free_puts: float = 0.0  # per month
    free_gets: float = 0.0  # per month
    free_storage_gb: float = 0.0
    round_up_to: float = 0.0  # billed in whole blocks of this many requests (R2: millions)
    note: str = ""

    def requests_cost(self, count: float, per_million: float, free: float) -> float:
        billable = max(0.0, count - free)
        if self.round_up_to and billable:
            billable = math.ceil(billable / self.round_up_to) * self.round_up_to
        return billable / 1e6 * per_million


PROVIDERS = (
    Provider(
        "AWS S3 Standard (us-east-1)",
        put_per_million=5.00,  # $0.005 per 1,000 PUT/COPY/POST/LIST
        get_per_million=0.40,  # $0.0004 per 1,000 GET/HEAD
        storage_per_gb_month=0.023,
        note="egress to viewers: first 100 GB/month free, then $0.09/GB",
    ),
    Provider(
        "Cloudflare R2 Standard",
        put_per_million=4.50,  # Class A
        get_per_million=0.36,  # Class B
        storage_per_gb_month=0.015,
        free_puts=1e6,
        free_gets=10e6,
        free_storage_gb=10,
        round_up_to=1e6,
        note="egress free",
    ),
    Provider(
        "Backblaze B2",
        put_per_million=0.0,  # Class A (uploads) free
        get_per_million=0.40,  # Class B: $0.004 per 10,000 after 2,500/day
        storage_per_gb_month=0.006,  # $6/TB-month (unverified; the page read $0.005)
        free_gets=2500 * 30,
        free_storage_gb=10,
        note="egress free up to 3x the data stored",
    ),
)


@dataclass(frozen=True)
class Estimate:
    """What a config costs in a 30-day month."""

    frames_per_month: float
    min_frames_per_month: float  # with skip_unchanged: only the max_age keep-alives
    puts_per_frame: float
    objects: tuple[str, ...]
    puts_per_month: float
    min_puts_per_month: float
    gets_per_month: float
    min_gets_per_month: float
    heads_per_month: float  # the publisher's own checks of the target (S3)
    storage_bytes: float
    assumed_fps: float | None
    viewers: float


def frame_key_deletes(keys_per_second: float) -> float:
    """DeleteObjects requests a month for frame keys: a batch (up to 1,000) a minute."""
    batches = math.ceil(keys_per_second * PRUNE_EVERY / DELETE_BATCH)
    return MONTH_SECONDS / PRUNE_EVERY * batches


def estimate(cfg: Config, fps: float | None = None, viewers: float = 0.0) -> Estimate:
    """Requests and storage for `cfg`; `fps` stands in for the rate when interval = 0."""
    interval = cfg.camera.interval
    assumed = None
    if interval > 0 and fps is None:
        rate = 1.0 / interval
    else:
        rate = fps if fps is not None else 1.0
        assumed = rate
    frames = MONTH_SECONDS * rate
    min_frames = frames
    if cfg.publish.skip_unchanged:
        min_frames = min(frames, MONTH_SECONDS / cfg.publish.max_age)
    image_puts = sum(1.0 / v.every for v in cfg.variants)
    objects: tuple[str, ...] = (*(v.name for v in cfg.variants), "live.json")
    deletes = 0.0
    if cfg.publish.frame_keys:
        # Each image again under its frame key, deleted in batches (counted as PUTs).
        deletes = frame_key_deletes(image_puts * rate)
        image_puts *= 2
        objects = (*objects, "frames/<seq>-<run>/<name>")
    puts_per_frame = image_puts + 1.0  # + live.json
    storage = 0.0
    for v in cfg.variants:
        w, h = v.size_for(cfg.camera.width, cfg.camera.height)
        storage += w * h * JPEG_BYTES_PER_PIXEL
    # Each viewer polls live.json about once per interval (1 s to 60 s) and fetches
    # one image per new frame.
    poll = min(max(interval, 1.0), 60.0)
    gets = viewers * (MONTH_SECONDS / poll + frames)
    min_gets = viewers * (MONTH_SECONDS / poll + min_frames)
    heads = 0.0
    if cfg.target.kind == "s3":  # a HEAD per page file and kept image each minute
        checked = len(load_site()) if cfg.site.enabled else 0
        checked += sum(1 for v in cfg.variants if v.every > 1)
        heads = MONTH_SECONDS / CHECK_EVERY * checked
    return Estimate(
        frames_per_month=frames,
        min_frames_per_month=min_frames,
        puts_per_frame=puts_per_frame,
        objects=objects,
        puts_per_month=frames * puts_per_frame + deletes,
        min_puts_per_month=min_frames * puts_per_frame + deletes,
        gets_per_month=gets,
        min_gets_per_month=min_gets,
        heads_per_month=heads,
        storage_bytes=storage,
        assumed_fps=assumed,
        viewers=viewers,
    )


def monthly(p: Provider, e: Estimate, *, static: bool = False) -> tuple[float, float, float]:
    """Request cost, storage cost and their total for one provider; `static` for a scene
    that never changes under skip_unchanged."""
    puts = e.min_puts_per_month if static else e.puts_per_month
    gets = (e.min_gets_per_month if static else e.gets_per_month) + e.heads_per_month
    requests = p.requests_cost(puts, p.put_per_million, p.free_puts)
    requests += p.requests_cost(gets, p.get_per_million, p.free_gets)
    gb = e.storage_bytes / 1e9
    storage = max(0.0, gb - p.free_storage_gb) * p.storage_per_gb_month
    return requests, storage, requests + storage


MANIFEST_BYTES = 600  # live.json with a few variants


def own_server_report(cfg: Config, e: Estimate) -> str:
    """For a target on the user's own server (sftp, webdav): no per-request fee, so the
    monthly bandwidth instead, upload from the Pi and download by viewers."""
    camera = cfg.camera
    sizes = [v.size_for(camera.width, camera.height) for v in cfg.variants]
    per_frame = sum(
        w * h * JPEG_BYTES_PER_PIXEL / v.every
        for v, (w, h) in zip(cfg.variants, sizes, strict=True)
    )
    upload = e.frames_per_month * (per_frame + MANIFEST_BYTES)
    mean_image = sum(w * h * JPEG_BYTES_PER_PIXEL for w, h in sizes) / max(1, len(sizes))
    poll = min(max(camera.interval, 1.0), 60.0)
    per_viewer = MONTH_SECONDS / poll * MANIFEST_BYTES + e.frames_per_month * mean_image
    if e.assumed_fps is not None:
        rate = f"rate: {e.assumed_fps:g} frames/s (interval = 0 or --fps)"
    else:
        rate = f"rate: one frame every {camera.interval:g} s"
    lines = [
        rate,
        f"frames per month (30 days): {e.frames_per_month:,.0f}",
        f"requests per month: {e.puts_per_month:,.0f} uploads ({', '.join(e.objects)})",
        f"a {cfg.target.kind} target on your own server has no per-request fee; "
        "what counts is bandwidth:",
        f"  upload from the camera: ~{upload / 1e9:,.1f} GB/month",
        f"  download per viewer watching all month: ~{per_viewer / 1e9:,.1f} GB "
        "(live.json polls plus one image of average size per frame)",
    ]
    if e.viewers:
        lines.append(
            f"  for {e.viewers:g} viewer(s): ~{e.viewers * per_viewer / 1e9:,.1f} GB/month"
        )
    lines.append(
        f"(JPEG sizes assumed at {JPEG_BYTES_PER_PIXEL} bytes per pixel; check your "
        "hosting plan's traffic allowance)"
    )
    return "\n".join(lines)


# An H.264 timelapse at crf 23: bytes per pixel per frame, twice what the synthetic day
# in docs/history.md measured, as real scenes are noisier.
TIMELAPSE_BYTES_PER_PIXEL = 0.01
INDEX_BYTES_PER_FRAME = 110  # one entry of a day index
STRIP_BYTES = 1440 * 120 * JPEG_BYTES_PER_PIXEL
DAY = 86400
MONTH_DAYS = MONTH_SECONDS / DAY


@dataclass(frozen=True)
class ArchiveEstimate:
    """What `[archive]` adds in a 30-day month."""

    frames_per_day: float
    frame_bytes: float
    puts_per_day: float
    puts_per_month: float
    day_bytes: float  # one day's frames, index, strip and timelapse
    stored_bytes: float  # at steady state: keep_days of days (keep_days = 0: one month)


def archive_estimate(cfg: Config) -> ArchiveEstimate | None:
    """The archive's requests and storage, None when it is off."""
    a = cfg.archive
    if not a.enabled:
        return None
    variant = next(v for v in cfg.variants if v.name == a.variant)
    w, h = variant.size_for(cfg.camera.width, cfg.camera.height)
    frames = DAY / a.every
    frame_bytes = w * h * JPEG_BYTES_PER_PIXEL
    puts = 2 * frames  # the image, then the day index naming it
    puts += frames / a.strip_every + 1  # the strip as the day goes on; days.json once
    if a.timelapse:
        puts += 4  # timelapse.mp4, poster.jpeg, the final strip, the index naming them
    puts += 4 + math.ceil(frames / 1000) + 1  # retention: LISTs, then DeleteObjects
    timelapse = frames * min(w, 1920) * h * TIMELAPSE_BYTES_PER_PIXEL if a.timelapse else 0
    day = frames * (frame_bytes + INDEX_BYTES_PER_FRAME) + STRIP_BYTES + timelapse
    kept = a.keep_days or MONTH_DAYS
    return ArchiveEstimate(frames, frame_bytes, puts, puts * MONTH_DAYS, day, day * kept)


def with_archive(p: Provider, e: Estimate, a: ArchiveEstimate) -> float:
    """A provider's monthly total for the live objects and the archive together (free
    tiers count once)."""
    requests = p.requests_cost(e.puts_per_month + a.puts_per_month, p.put_per_million, p.free_puts)
    gets = e.gets_per_month + e.heads_per_month
    requests += p.requests_cost(gets, p.get_per_million, p.free_gets)
    gb = (e.storage_bytes + a.stored_bytes) / 1e9
    return requests + max(0.0, gb - p.free_storage_gb) * p.storage_per_gb_month


def archive_report(cfg: Config, e: Estimate, a: ArchiveEstimate) -> list[str]:
    """The archive's part of `cost`."""
    c = cfg.archive
    keep = f"{c.keep_days} days kept" if c.keep_days else "every day kept: grows each month"
    lines = [
        "",
        f"archive: {c.variant} every {c.every} s, {a.frames_per_day:,.0f} frames a day "
        f"(~{a.frame_bytes / 1e3:.0f} KB each), {keep}",
        f"  PUTs per month: {a.puts_per_month:,.0f} (image + day index per frame, the strip "
        f"every {c.strip_every} frames, days.json, timelapse, retention)",
        f"  stored at steady state: ~{a.stored_bytes / 1e9:.2f} GB "
        f"(~{a.day_bytes / 1e6:.0f} MB a day with its strip"
        + (" and timelapse)" if c.timelapse else ")"),
    ]
    header = f"  {'provider':<30}{'live only':>12}{'with archive':>14}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for p in PROVIDERS:
        live = monthly(p, e)[2]
        lines.append(f"  {p.name:<30}{'$' + format(live, ',.2f'):>12}"
                     f"{'$' + format(with_archive(p, e, a), ',.2f'):>14}")  # fmt: skip
    return lines


def report(cfg: Config, e: Estimate) -> str:
    """The estimate as the `cost` command prints it."""
    if cfg.target.kind in ("sftp", "webdav"):
        return own_server_report(cfg, e)
    lines = []
    if e.assumed_fps is not None:
        how = "interval = 0" if cfg.camera.interval == 0 else "--fps"
        lines.append(f"rate: {e.assumed_fps:g} frames/s ({how}; pass --fps to change)")
    else:
        lines.append(f"rate: one frame every {cfg.camera.interval:g} s")
    lines.append(f"frames per month (30 days): {e.frames_per_month:,.0f}")
    lines.append(f"PUTs per frame: {e.puts_per_frame:g} ({', '.join(e.objects)})")
    lines.append(f"PUTs per month: {e.puts_per_month:,.0f}")
    if cfg.publish.skip_unchanged:
        lines.append(
            f"  with skip_unchanged on a static scene: {e.min_puts_per_month:,.0f} "
            f"(a keep-alive every {cfg.publish.max_age:g} s)"
        )
    if e.heads_per_month:
        lines.append(
            f"HEADs per month: {e.heads_per_month:,.0f} (the page and kept images, "
            f"checked every {CHECK_EVERY:g} s)"
        )
    if e.viewers:
        lines.append(
            f"GETs per month for {e.viewers:g} viewer(s) watching: {e.gets_per_month:,.0f}"
        )
    lines.append(
        f"storage: ~{e.storage_bytes / 1e6:.1f} MB (live objects are overwritten: one frame)"
    )
    lines.append("")
    header = f"{'provider':<30}{'requests':>12}{'storage':>10}{'per month':>12}"
    lines.append(header)
    lines.append("-" * len(header))
    for p in PROVIDERS:
        requests, storage, total = monthly(p, e)
        row = f"{p.name:<30}{'$' + format(requests, ',.2f'):>12}"
        row += f"{'$' + format(storage, ',.2f'):>10}{'$' + format(total, ',.2f'):>12}"
        if cfg.publish.skip_unchanged:
            low = monthly(p, e, static=True)[2]
            row += f"  (static scene: ${low:,.2f})"
        lines.append(row)
    if (a := archive_estimate(cfg)) is not None:
        lines += archive_report(cfg, e, a)
    lines.append("")
    lines.append(f"Prices as published in {PRICES_AS_OF} (livecam/cost.py); verify before relying:")
    for p in PROVIDERS:
        lines.append(f"  {p.name}: {p.note}")
    if e.puts_per_month > 1e6:
        lines.append(
            "To pay less: a longer interval, [publish] skip_unchanged = true, or every = N on "
            "the large variants."
        )
    return "\n".join(lines)


# --- viewers: bandwidth, and a CDN in front (docs/scaling.md) ---------------------------

EGRESS_AS_OF = "2026-12"
GB = 1e9
VIEWER_WIDTH = 800  # the variant a viewer loads: the smallest at least this wide

# Egress to the internet, USD per GB, by tier: (GB up to which a price applies, price).
AWS_S3_EGRESS = ((10_000, 0.09), (50_000, 0.085), (150_000, 0.07), (math.inf, 0.05))
AWS_S3_FREE_GB = 100
B2_EGRESS = ((math.inf, 0.01),)  # beyond 3x the data stored, which a live cam never has
CLOUDFRONT_EGRESS = (  # United States, Mexico, Canada, Europe
    (10_000, 0.085),
    (50_000, 0.080),
    (150_000, 0.060),
    (500_000, 0.040),
    (math.inf, 0.030),
)
EGRESS = {  # by Provider.name; R2 charges none
    PROVIDERS[0].name: (AWS_S3_EGRESS, AWS_S3_FREE_GB),
    PROVIDERS[1].name: ((), 0.0),
    PROVIDERS[2].name: (B2_EGRESS, 0.0),
}


def tiered(gb: float, tiers: tuple[tuple[float, float], ...], free_gb: float = 0.0) -> float:
    """The price of `gb` GB at tiered per-GB prices, after `free_gb` free."""
    billable, cost, floor = max(0.0, gb - free_gb), 0.0, 0.0
    for upto, price in tiers:
        if billable <= floor:
            break
        cost += (min(billable, upto) - floor) * price
        floor = upto
    return cost


@dataclass(frozen=True)
class Cdn:
    """A CDN in front of a bucket: what it charges viewers' requests and bytes, and
    which provider it fetches from."""

    name: str
    origin: str  # a Provider.name
    per_million_requests: float
    free_requests: float
    egress: tuple[tuple[float, float], ...]
    free_gb: float
    note: str


CDNS = {
    "cloudfront": Cdn(
        "Amazon CloudFront in front of S3",
        origin=PROVIDERS[0].name,
        per_million_requests=1.00,  # HTTPS, US/Europe: $0.0100 per 10,000
        free_requests=10e6,
        egress=CLOUDFRONT_EGRESS,
        free_gb=1000,  # always-free tier: 1 TB and 10M requests a month
        note="origin fetches from S3 are free of transfer charges; S3 bills their GETs",
    ),
    "cloudflare": Cdn(
        "Cloudflare (free plan) in front of R2",
        origin=PROVIDERS[1].name,
        per_million_requests=0.0,
        free_requests=0.0,
        egress=(),
        free_gb=0.0,
        note="no charge for cached requests or bandwidth; R2 bills the origin reads (Class B)",
    ),
}

# What to set as `target.cache_control` (and publish.frame_keys) for each way of serving.
CACHE_CONTROL = {
    None: "no-cache",  # browsers straight from the bucket or nginx: revalidate every time
    "cloudfront": "public, max-age=1",  # the edge keeps live.json 1 s: one origin read a second
    "cloudflare": "public, max-age=1",  # Cloudflare obeys the origin; with a cache rule for JSON
}


def recommended_cache_control(cdn: str | None) -> str:
    """The `target.cache_control` for live objects when served through `cdn` (or none)."""
    return CACHE_CONTROL[cdn]


@dataclass(frozen=True)
class Viewing:
    """What `viewers` watching around the clock fetch in a 30-day month."""

    viewers: float
    image: str  # the variant each viewer loads
    image_bytes: float
    measured: bool  # image_bytes given (--image-bytes), not estimated from the pixels
    polls: float  # manifest requests, all viewers
    images: float  # image requests, all viewers
    egress_bytes: float
    origin_reads: float  # with a CDN: requests that reach the bucket


def viewing(
    cfg: Config,
    e: Estimate,
    *,
    image_bytes: float | None = None,
    cdn: str | None = None,
) -> Viewing:
    """Viewers' requests and bytes; with `cdn`, the reads that still reach the bucket."""
    sizes = [(v, v.size_for(cfg.camera.width, cfg.camera.height)) for v in cfg.variants]
    sizes.sort(key=lambda s: s[1][0])
    variant, (w, h) = next(((v, s) for v, s in sizes if s[0] >= VIEWER_WIDTH), sizes[-1])
    per_image = image_bytes if image_bytes is not None else w * h * JPEG_BYTES_PER_PIXEL
    poll = min(max(cfg.camera.interval, 1.0), 60.0)
    polls = e.viewers * MONTH_SECONDS / poll
    # A viewer loads the variant when its frame changed: every `every`-th frame.
    images = e.viewers * e.frames_per_month / variant.every
    egress = polls * MANIFEST_BYTES + images * per_image
    origin = 0.0
    if cdn is not None and e.viewers:
        # One location (CloudFront Origin Shield, Cloudflare Tiered Cache): live.json
        # once per second of max-age=1, each frame key once.
        origin = MONTH_SECONDS / 1.0 + e.frames_per_month / variant.every
    return Viewing(
        e.viewers, variant.name, per_image, image_bytes is not None, polls, images, egress, origin
    )


def egress_cost(provider: Provider, gb: float) -> float:
    """What `provider` charges for `gb` GB served to viewers straight from the bucket."""
    tiers, free = EGRESS[provider.name]
    return tiered(gb, tiers, free)


@dataclass(frozen=True)
class CdnBill:
    """A month behind a CDN: the CDN's own charges and the bucket's."""

    cdn_requests: float
    cdn_egress: float
    origin_requests: float  # the bucket's GETs for the CDN's misses, plus the PUTs
    storage: float

    @property
    def total(self) -> float:
        return self.cdn_requests + self.cdn_egress + self.origin_requests + self.storage


def cdn_monthly(cdn: Cdn, e: Estimate, v: Viewing) -> CdnBill:
    """The month's bill with viewers served by `cdn`."""
    origin = next(p for p in PROVIDERS if p.name == cdn.origin)
    requests = v.polls + v.images
    cdn_requests = max(0.0, requests - cdn.free_requests) / 1e6 * cdn.per_million_requests
    cdn_egress = tiered(v.egress_bytes / GB, cdn.egress, cdn.free_gb)
    origin_requests = origin.requests_cost(
        e.puts_per_month, origin.put_per_million, origin.free_puts
    )
    origin_requests += origin.requests_cost(
        v.origin_reads + e.heads_per_month, origin.get_per_million, origin.free_gets
    )
    storage = monthly(origin, e)[1]
    return CdnBill(cdn_requests, cdn_egress, origin_requests, storage)


def viewers_report(cfg: Config, e: Estimate, v: Viewing, cdn: str | None) -> str:
    """Bandwidth for the viewers, priced per provider, and with a CDN in front."""
    how = "as given by --image-bytes" if v.measured else "estimated from its pixels"
    lines = [
        "",
        f"Viewers: {v.viewers:g} watching around the clock, each loading {v.image} "
        f"(~{v.image_bytes / 1000:,.0f} KB, {how}) once per new frame and live.json "
        f"once per interval",
        f"  requests per month: {v.polls:,.0f} manifest + {v.images:,.0f} image",
        f"  egress per month: {v.egress_bytes / GB:,.1f} GB",
        "",
    ]
    header = f"{'straight from the bucket':<30}{'requests':>12}{'egress':>12}{'per month':>13}"
    lines += [header, "-" * len(header)]
    for p in PROVIDERS:
        requests, _, total = monthly(p, e)
        egress = egress_cost(p, v.egress_bytes / GB)
        row = f"{p.name:<30}{'$' + format(requests, ',.2f'):>12}"
        row += f"{'$' + format(egress, ',.2f'):>12}{'$' + format(total + egress, ',.2f'):>13}"
        lines.append(row)
    lines.append(f"  recommended: cache_control = {recommended_cache_control(None)!r}")
    if cdn is not None:
        c = CDNS[cdn]
        # Priced as recommended: with frame keys (their PUTs and deletes).
        keyed = replace(cfg, publish=replace(cfg.publish, frame_keys=True))
        bill = cdn_monthly(c, estimate(keyed, e.assumed_fps, e.viewers), v)
        lines += [
            "",
            f"{c.name} (--cdn {cdn}):",
            f"  reads reaching the bucket: {v.origin_reads:,.0f} a month, whatever the "
            "number of viewers (live.json once a second, each frame key once)",
            f"  CDN requests ${bill.cdn_requests:,.2f}, CDN egress ${bill.cdn_egress:,.2f}, "
            f"bucket requests ${bill.origin_requests:,.2f}, storage ${bill.storage:,.2f}: "
            f"${bill.total:,.2f} a month",
            f"  recommended: cache_control = {recommended_cache_control(cdn)!r}, "
            "[publish] frame_keys = true (docs/scaling.md)",
            f"  {c.note}",
        ]
        if not cfg.publish.frame_keys:
            lines.append(
                "  (priced with frame_keys on: it is off in this config, and behind a CDN the "
                "page may then show older frames)"
            )
    lines.append(
        f"Egress and CDN prices as published in {EGRESS_AS_OF} (US/Europe; livecam/cost.py); "
        "verify before relying."
    )
    return "\n".join(lines)
