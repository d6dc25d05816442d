"""A target wiped under a running publisher (the directory deleted, the bucket emptied):
no manifest keeps naming an image that is gone, and the page comes back."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from livecam import config
from livecam.camera.testpattern import TestPatternCamera
from livecam.loop import Publisher
from livecam.targets.local import LocalTarget
from livecam.targets.s3 import S3Target

from .conftest import MotoServer, s3_client


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


@contextmanager
def running(pub: Publisher) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=pub.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        pub.close()
    assert not thread.is_alive()


def cfg_for(target: dict[str, Any], every: int) -> config.Config:
    return config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240, "interval": 0.1},
            "variants": [
                {"name": "live.jpeg"},
                {"name": "big.jpeg", "width": 160, "height": 120, "every": every},
            ],
            "target": target,
            "publish": {"status_interval": 0},
        }
    )


def test_a_deleted_directory_never_leaves_a_manifest_naming_a_missing_image(
    tmp_path: Path,
) -> None:
    www = tmp_path / "www"
    cfg = cfg_for({"kind": "local", "path": str(www)}, every=4)
    # A deletion racing the writes may leave the directory with the page gone: the
    # periodic check (1 s here) puts it back.
    pub = Publisher(cfg, lambda: TestPatternCamera(320, 240), LocalTarget(www), check_every=1.0)
    wiped_at = [0]  # seq published when the directory was last deleted
    problems: list[str] = []
    checked = [0]
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                m = json.loads((www / "live.json").read_bytes())
            except (OSError, ValueError):
                continue
            # The frame in flight at a deletion may name what it deleted: not ours.
            if m["seq"] < wiped_at[0] + 2:
                continue
            gone = [name for name in m["images"] if not (www / name).is_file()]
            if gone and m["seq"] >= wiped_at[0] + 2:  # not a deletion since the read
                problems.append(f"seq {m['seq']} names {gone}")
            checked[0] += 1

    thread = threading.Thread(target=reader, daemon=True)
    with running(pub):
        thread.start()
        wait_until(lambda: pub.seq >= 3, 20, "first frames")
        for _ in range(4):
            wiped_at[0] = pub.seq
            shutil.rmtree(www, ignore_errors=True)
            wait_until(lambda: pub.seq >= wiped_at[0] + 6, 20, "frames after the deletion")
        done.set()
        thread.join(5)
        wait_until((www / "index.html").is_file, 5, "the page back")
    assert checked[0] > 20
    assert problems == []


def wipe(s3: Any, bucket: str, prefix: str) -> None:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})


def s3_run(moto_server: MotoServer, bucket: str) -> tuple[Publisher, Any]:
    target = {
        "kind": "s3",
        "bucket": bucket,
        "prefix": "cam/",
        "endpoint_url": moto_server.url,
        "region": "us-east-1",
    }
    # big.jpeg's own turn comes only every 10 s: the wipe must be found before.
    cfg = cfg_for(target, every=100)
    camera = TestPatternCamera(320, 240)
    return Publisher(cfg, lambda: camera, S3Target(cfg.target), check_every=1.0), s3_client(
        moto_server.url
    )


def present(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def test_a_wiped_bucket_gets_its_page_back(moto_server: MotoServer, bucket: str) -> None:
    pub, s3 = s3_run(moto_server, bucket)
    with running(pub):
        wait_until(lambda: pub.seq >= 3, 20, "first frames")
        wipe(s3, bucket, "cam/")
        wait_until(
            lambda: all(
                present(s3, bucket, f"cam/{name}")
                for name in ("index.html", "embed.html", "live-embed.js", "style.css")
            ),
            5,
            "the page restored",
        )


def test_a_wiped_bucket_soon_has_every_image_its_manifest_names(
    moto_server: MotoServer, bucket: str
) -> None:
    pub, s3 = s3_run(moto_server, bucket)
    with running(pub):
        wait_until(lambda: pub.seq >= 3, 20, "first frames")
        wipe(s3, bucket, "cam/")
        # One check (1 s here, a minute by default) and a frame later, and from then on:
        time.sleep(2.5)
        checked = 0
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            m = json.loads(s3.get_object(Bucket=bucket, Key="cam/live.json")["Body"].read())
            gone = [n for n in m["images"] if not present(s3, bucket, f"cam/{n}")]
            assert gone == [], f"seq {m['seq']} names {gone}"
            checked += 1
    assert checked > 5
