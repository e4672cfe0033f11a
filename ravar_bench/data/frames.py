"""AVA frame layout and clip sampling.

AVA movies are cut to seconds 900..1800 and decoded at 30 fps; the key frame of second t has index
(t - start_second) * fps + index_offset in DIR/frames/<video_id>/image_%06d.jpg (the authors' layout).
A clip is T DISTINCT frames at a stride, centred on the key frame, clamped to the window of
``window`` frames around it (90 = 3 s: the released loader meant that window but read one frame 90 times).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch


@dataclasses.dataclass(frozen=True)
class FrameLayout:
    pattern: str = "{video_id}/image_{index:06d}.jpg"
    fps: int = 30
    start_second: int = 900
    index_offset: int = 1
    window: int = 90  # frames around the key frame a clip may use: [key - window//2, key + window//2 - 1]

    def key_index(self, timestamp: int) -> int:
        return (timestamp - self.start_second) * self.fps + self.index_offset

    def path(self, frames_dir: Path, video_id: str, index: int) -> Path:
        return frames_dir / self.pattern.format(video_id=video_id, index=index)


class ClipWindowError(ValueError):
    """The clip of a key frame does not fit between the movie's first frame and the end of its window (a
    timestamp before the movie's start, or a stride too long for a window cut at the start). ``first`` / ``last``:
    the frames the window holds (``last < first`` when it lies wholly before the movie); ``wanted``: the span."""

    def __init__(self, message: str, first: int, last: int, wanted: int):
        super().__init__(message)
        self.first, self.last, self.wanted = first, last, wanted


def sample_indices(key_index: int, num_frames: int, stride: int, window: int, first_index: int = 1) -> list[int]:
    """T frame indices at ``stride`` centred on ``key_index`` (the key frame is index T//2), clamped to the window.

    Raises when T frames at that stride cannot be distinct inside the window, rather than silently
    repeating frames (the released loader's bug), and when the window is cut by the movie's first frame
    (``first_index``) so much that they no longer fit: every returned index lies in
    [max(first_index, key - window//2), key + window - window//2 - 1].
    """
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and frame_stride must be >= 1, got {num_frames}, {stride}")
    if (num_frames - 1) * stride + 1 > window:
        raise ValueError(f"{num_frames} frames at stride {stride} span {(num_frames - 1) * stride + 1} frames, more "
                         f"than the {window}-frame window around the key frame; lower data.frame_stride")
    lo = max(first_index, key_index - window // 2)
    hi = key_index + (window - window // 2) - 1
    span = (num_frames - 1) * stride + 1
    if span > hi - lo + 1:
        # the window is cut at the movie's first frame: an error, not a clip reaching before the first frame
        # or past the window (frames there were never extracted, by tools/prepare_refava.py or the generator)
        if hi < lo:  # the whole window lies before the movie: no stride helps
            raise ClipWindowError(f"key frame {key_index} and its {window}-frame window {key_index - window // 2}.."
                                  f"{hi} lie before the movie's first frame {first_index}", lo, hi, span)
        raise ClipWindowError(f"{num_frames} frames at stride {stride} span {span} frames, but key frame {key_index} "
                              f"has only frames {lo}..{hi} of its {window}-frame window (the movie starts at frame "
                              f"{first_index}); lower data.frame_stride", lo, hi, span)
    idx = [key_index + (k - num_frames // 2) * stride for k in range(num_frames)]
    # shift (not clamp per frame) so the frames stay distinct when the window is cut at the movie's start
    if idx[0] < lo:
        idx = [i + (lo - idx[0]) for i in idx]
    if idx[-1] > hi:
        idx = [i - (idx[-1] - hi) for i in idx]
    return idx


def read_frame(path: Path) -> torch.Tensor:
    """uint8 (3, H, W); a missing or undecodable file is an error naming the path."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    try:
        return decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)
    except RuntimeError as e:  # the stat only on failure: it costs ~5% of a small frame's decode
        if not Path(path).is_file():
            raise FileNotFoundError(f"frame missing: {path}") from None
        raise RuntimeError(f"frame unreadable (not a valid JPEG): {path}: {e}") from None


def resize_uint8(frames: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(..., 3, H, W) uint8 -> (..., 3, S, S) uint8, bilinear with antialias.

    torchvision's v2 resize keeps uint8 on its fast integer path (3x faster here than resizing in float)."""
    from torchvision.transforms.v2.functional import resize

    hw = [size, size] if isinstance(size, int) else list(size)
    if list(frames.shape[-2:]) == hw:
        return frames
    return resize(frames, hw, antialias=True)


def normalise(frames: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float (x / 255 - mean) / std, as one multiply and one subtract in place."""
    std_t = torch.tensor(std, dtype=torch.float32, device=frames.device).view(3, 1, 1)
    scale = 1.0 / (255.0 * std_t)
    shift = torch.tensor(mean, dtype=torch.float32, device=frames.device).view(3, 1, 1) / std_t
    return frames.to(torch.float32).mul_(scale).sub_(shift)
