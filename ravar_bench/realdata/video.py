"""Decoding a movie at chosen times with PyAV: the frame for time s is the decoded frame whose pts is nearest.

AVA movies have mixed frame rates; the suite's frame layout is a 30 fps timeline, so frames are picked
by timestamp, not by counting decoded frames.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError

VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi")


class VideoUnreadable(DataError, RuntimeError):
    """A file PyAV cannot open or decode as a video; the message names it (one line through the CLI)."""


def find_video(videos_dir: str | Path, video_id: str) -> Path | None:
    for ext in VIDEO_EXTS:
        p = Path(videos_dir) / f"{video_id}{ext}"
        if p.is_file():
            return p
    return None


def frames_at_times(path: str | Path, times: list[float], cluster_gap: float = 5.0, tolerance: float | None = None):
    """Yield (time, PIL.Image) for every requested time (seconds on the video's own timeline), in sorted order.

    Decodes sequentially, seeking once per cluster of nearby times. A time farther than ``tolerance``
    (default: 1.5 source frame durations) from any decoded frame (e.g. past the video's end) is
    yielded with ``None`` in place of the image.
    """
    import av

    want = sorted(set(float(t) for t in times))
    if not want:
        return
    try:
        container = av.open(str(path))
    except Exception as e:  # av raises several error types for broken / unknown files
        raise VideoUnreadable(f"{path}: cannot open video: {e}") from None
    try:
        if not container.streams.video:
            raise VideoUnreadable(f"{path}: no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        tol = tolerance if tolerance is not None else 1.5 / max(rate, 1e-6)
        clusters, cur = [], [want[0]]
        for t in want[1:]:
            if t - cur[-1] > cluster_gap:
                clusters.append(cur)
                cur = []
            cur.append(t)
        clusters.append(cur)
        for cl in clusters:
            seek_to = max(0.0, cl[0] - 1.0)
            try:
                container.seek(int(seek_to / stream.time_base), stream=stream, backward=True, any_frame=False)
            except Exception:
                container.seek(0)
            k = 0  # next requested time of this cluster
            prev = None  # (time, frame)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                ft = float(frame.pts * stream.time_base)
                while k < len(cl) and ft >= cl[k]:
                    cand = [(abs(ft - cl[k]), frame)]
                    if prev is not None:
                        cand.append((abs(prev[0] - cl[k]), prev[1]))
                    d, best = min(cand, key=lambda c: c[0])
                    yield cl[k], (best.to_image() if d <= tol else None)
                    k += 1
                if k >= len(cl):
                    break
                prev = (ft, frame)
            if k < len(cl):  # the video ended first
                for t in cl[k:]:
                    ok = prev is not None and abs(prev[0] - t) <= tol
                    yield t, (prev[1].to_image() if ok else None)
    except av.error.FFmpegError as e:
        raise VideoUnreadable(f"{path}: decoding failed: {e}") from None
    finally:
        container.close()
