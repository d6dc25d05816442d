"""`publish.frame_keys`: immutable per-frame copies, named by the manifest, deleted
once no viewer can still want them."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from livecam import config, frames
from livecam.camera.testpattern import TestPatternCamera
from livecam.loop import Publisher
from livecam.targets.local import LocalTarget

from .conftest import MotoServer, s3_client
from .test_loop import FakeClock
from .test_s3 import target_for

VARIANTS = [
    {"name": "live.jpeg"},
    {"name": "small.jpeg", "width": 160, "height": 120},
    {"name": "big.jpeg", "width": 320, "height": 240, "every": 3},
]


def frame_config(target: dict[str, Any]) -> config.Config:
    return config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240, "interval": 2.0},
            "variants": VARIANTS,
            "target": target,
            "publish": {"frame_keys": True},
        }
    )


def test_retention_deletes_only_what_the_manifest_stopped_naming_after_the_grace() -> None:
    r = frames.Retention(grace=60)
    r.replaced(["frames/1/a.jpeg", "frames/1/b.jpeg"], ["frames/2/a.jpeg", "frames/1/b.jpeg"], 0)
    assert r.due(59.9) == []
    assert r.due(60) == ["frames/1/a.jpeg"]
    r.replaced(["frames/2/a.jpeg"], ["frames/3/a.jpeg"], 70)
    keys = r.due(200)
    r.failed(keys, 200)  # the target could not delete: kept for the next batch
    assert r.due(200) == ["frames/2/a.jpeg"]
    assert frames.named(b'{"images": {"a": {"key": "frames/9/a.jpeg"}, "b": {}}}') == [
        "frames/9/a.jpeg"
    ]
    assert frames.named(b"garbled") == frames.named(None) == []


def test_local_frame_keys_are_published_named_and_pruned(tmp_path: Path) -> None:
    clock = FakeClock()
    camera = TestPatternCamera(320, 240)
    cfg = frame_config({"kind": "local", "path": str(tmp_path)})
    pub = Publisher(cfg, lambda: camera, LocalTarget(tmp_path), clock=clock, site_files=lambda: [])
    pub.start()
    for _ in range(3):
        pub.publish_next()
        clock.advance(2.0)
    m = json.loads((tmp_path / "live.json").read_text())
    assert m["seq"] == 3
    run = pub.manifest.run
    assert re.fullmatch(r"[0-9a-f]{11,}", run)
    for name, entry in m["images"].items():
        # The per-frame copy holds the same bytes as the fixed name, and its key says
        # which frame it is (big.jpeg, every third frame, is still frame 1's).
        assert entry["key"] == f"frames/{entry['seq']}-{run}/{name}"
        assert (tmp_path / entry["key"]).read_bytes() == (tmp_path / name).read_bytes()
    assert m["images"]["big.jpeg"]["key"] == f"frames/1-{run}/big.jpeg"
    dirs = [f"{n}-{run}" for n in (1, 2, 3)]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == dirs
    pub.prune_frames()  # nothing is old enough yet
    assert len(list((tmp_path / "frames").iterdir())) == 3
    clock.advance(frames.GRACE)
    pub.prune_frames()
    # Frame 2 is gone, its directory too; frame 1 keeps the image still named.
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [dirs[0], dirs[2]]
    assert [p.name for p in (tmp_path / "frames" / dirs[0]).iterdir()] == ["big.jpeg"]
    pub.close()


def test_after_losing_live_json_frame_keys_never_name_an_old_picture(tmp_path: Path) -> None:
    """A tmpfs target after a reboot: live.json is gone and `seq` starts at 1 again, but
    caches hold the old run's frame keys for a year: the new frame 1 has another key."""
    camera = TestPatternCamera(320, 240)
    cfg = frame_config({"kind": "local", "path": str(tmp_path)})
    keys = []
    for _ in range(2):
        pub = Publisher(cfg, lambda: camera, LocalTarget(tmp_path), site_files=lambda: [])
        pub.start()
        pub.publish_next()
        pub.close()
        m = json.loads((tmp_path / "live.json").read_text())
        assert m["seq"] == 1
        keys.append(m["images"]["live.jpeg"]["key"])
        shutil.rmtree(tmp_path)  # the reboot
        time.sleep(0.002)  # a new start, a new millisecond
    assert keys[0] != keys[1]


def test_s3_frame_keys_are_immutable_and_deleted_in_batches(
    moto_server: MotoServer, bucket: str
) -> None:
    target = target_for(moto_server.url, bucket)
    deletes: list[int] = []
    target.client.meta.events.register(
        "before-parameter-build.s3.DeleteObjects",
        lambda params, **kw: deletes.append(len(params["Delete"]["Objects"])),
    )
    clock = FakeClock()
    camera = TestPatternCamera(320, 240)
    cfg = frame_config({"kind": "s3", "bucket": bucket})
    pub = Publisher(cfg, lambda: camera, target, clock=clock, site_files=lambda: [])
    pub.start()
    for _ in range(5):
        pub.publish_next()
        clock.advance(2.0)
    s3 = s3_client(moto_server.url)
    run = pub.manifest.run
    head = s3.head_object(Bucket=bucket, Key=f"cam1/frames/5-{run}/small.jpeg")
    assert head["CacheControl"] == frames.IMMUTABLE
    assert s3.head_object(Bucket=bucket, Key="cam1/small.jpeg")["CacheControl"] == "no-cache"
    clock.advance(frames.GRACE)
    pub.prune_frames()
    assert deletes == [9]  # one request: frames 1-4 of two variants, frame 1's big.jpeg
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="cam1/frames/")["Contents"]}
    assert keys == {
        f"cam1/frames/{k}"
        for k in (f"5-{run}/live.jpeg", f"5-{run}/small.jpeg", f"4-{run}/big.jpeg")
    }
    pub.close()
    # A restart replaces the keys the published manifest names with its first frame.
    pub = Publisher(cfg, lambda: camera, target_for(moto_server.url, bucket), clock=clock)
    pub.start()
    pub.publish_next()
    clock.advance(frames.GRACE)
    pub.prune_frames()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="cam1/frames/")["Contents"]}
    assert keys == {f"cam1/frames/6-{pub.manifest.run}/{v['name']}" for v in VARIANTS}
    pub.close()
