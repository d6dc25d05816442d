"""Fake picamera2, importable as `picamera2` with tests/fakes on sys.path.

The exports mirror picamera2/__init__.py (Picamera2, CompletedRequest, MappedArray);
`scenario` is the fake's own control panel. See tests/fakes/README.md.
"""

from picamera2 import scenario
from picamera2.picamera2 import Picamera2
from picamera2.request import CompletedRequest, MappedArray

scenario.load_env()

__all__ = ["CompletedRequest", "MappedArray", "Picamera2", "scenario"]
