"""History: the archive, its indexes and retention, the day strip, the timelapse."""
