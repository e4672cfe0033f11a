"""Point a trained method at any video and a sentence: top AVA actions, a predicted box, a Fig.-4-style PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.ava import class_names
from ..data.coco import COCO_ID
from ..data.frames import ClipWindowError, normalise, resize_uint8, sample_indices
from ..errors import DataError
from .video import VideoUnreadable, frames_at_times


class DemoInputMissing(DataError, FileNotFoundError):
    pass


class DemoInputError(DataError, ValueError):
    """A --time the video or the clip layout cannot serve; one line through the CLI."""


def load_trained(run_dir=None, method=None, seed: int = 0, checkpoint=None, config=None, device="cpu"):
    """(model, cfg) from run_dir/runs/<method>/seed<k>/{model.pt,config.py} or an explicit checkpoint + config."""
    from mmengine.config import Config

    from ..factory import build_from_config

    if checkpoint is None or config is None:
        if run_dir is None or method is None:
            raise ValueError("give --run-dir and --method, or --checkpoint and --config")
        work = Path(run_dir) / "runs" / method / f"seed{seed}"
        checkpoint, config = work / "model.pt", work / "config.py"
    for p, what in ((checkpoint, "trained weights"), (config, "run config")):
        if not Path(p).is_file():
            raise DemoInputMissing(f"{what} not found at {p}; train first with tools/run_bench.py "
                                    f"--methods {method or '<name>'} --out {run_dir or '<run-dir>'}")
    cfg = Config.fromfile(str(config))
    model = build_from_config(cfg)
    model.load_state_dict(torch.load(checkpoint, weights_only=True, map_location="cpu"))
    return model.to(device).eval(), cfg


def read_clip(video: str | Path, time: float | None, num_frames: int, stride: int, fps: int = 30,
              window: int = 90):
    """T distinct uint8 frames (T, 3, H, W) at ``stride`` on a ``fps`` timeline centred on ``time`` seconds
    (default: the middle of the video), and the key frame (3, H, W) as its own array."""
    import av

    if time is None:
        try:
            with av.open(str(video)) as c:
                if not c.streams.video:
                    raise VideoUnreadable(f"{video}: no video stream")
                s = c.streams.video[0]
                dur = float(s.duration * s.time_base) if s.duration else float(c.duration or 0) / 1e6
        except av.error.FFmpegError as e:  # e.g. InvalidDataError: not a video at all
            raise VideoUnreadable(f"{video}: cannot open video: {e}") from None
        time = dur / 2
    key = round(time * fps)
    try:
        idx = sample_indices(key, num_frames, stride, window, first_index=0)
    except ClipWindowError as e:
        raise DemoInputError(f"{video}: --time {time:.2f} s: {e}; choose a later --time") from None
    times = [i / fps for i in idx]
    got = dict(frames_at_times(video, times))
    miss = [t for t in times if got.get(t) is None]
    if miss:
        raise DemoInputError(f"{video}: no frame near {miss[0]:.2f} s; choose --time inside the video")
    frames = [torch.from_numpy(np.array(got[t].convert("RGB"))).permute(2, 0, 1) for t in times]
    key_frame = frames[idx.index(key)] if key in idx else torch.from_numpy(
        np.array(dict(frames_at_times(video, [key / fps]))[key / fps].convert("RGB"))).permute(2, 0, 1)
    return torch.stack(frames), key_frame, time


def detections_batch(rows, num_dets: int) -> dict:
    rows = sorted(rows, key=lambda r: -r[4])[:num_dets]
    boxes, scores = torch.zeros(1, num_dets, 4), torch.zeros(1, num_dets)
    mask, cats, names = torch.zeros(1, num_dets, dtype=torch.bool), torch.zeros(1, num_dets, dtype=torch.long), ["N/A"] * num_dets
    for k, r in enumerate(rows):
        boxes[0, k] = torch.tensor(r[:4])
        scores[0, k], mask[0, k], cats[0, k], names[k] = float(r[4]), True, COCO_ID[r[5]], r[5]
    return {"boxes": boxes, "scores": scores, "mask": mask, "cat_ids": cats, "cat_names": [names]}


@torch.no_grad()
def run_demo(video, text: str, model, cfg, time: float | None = None, top_k: int = 5, out_png=None,
             cache_dir=None) -> dict:
    """Predict for one (video, sentence): {"actions": [(name, score)], "box": [x1,y1,x2,y2], "time": s, "png": path}."""
    from ..engine.text_cache import TextFeatureCache

    d = cfg.data
    clip, key_frame, time = read_clip(video, time, int(d.num_frames), int(d.frame_stride), int(d.get("fps", 30)),
                                      int(d.get("window", 90)))
    needs = model.needs
    batch = {"key": ["demo"], "text": [text]}
    if "video" in needs:
        batch["video"] = normalise(resize_uint8(clip, d.img_size), d.mean, d.std)[None]
    if "keyframe" in needs:
        batch["keyframe"] = normalise(resize_uint8(key_frame, d.get("keyframe_size", d.img_size)), d.mean, d.std)[None]
    if "detections" in needs:
        from .detect import HogDetector

        batch["detections"] = detections_batch(HogDetector()(key_frame.permute(1, 2, 0).numpy()), int(d.get("num_dets", 16)))
    batch = TextFeatureCache(dict(cfg.text_encoder), cache_dir=cache_dir).add_to_batch(batch, needs)
    out = model(batch)
    scores = torch.sigmoid(out["logits"][0].float()).numpy()
    names = class_names()
    order = np.argsort(-scores)[:top_k]
    result = {"actions": [(names[i], float(scores[i])) for i in order], "box": out["boxes"][0].tolist(),
              "time": time, "png": None}
    if out_png:
        result["png"] = str(draw_figure(key_frame, result["box"], text, result["actions"], out_png))
    return result


def draw_figure(key_frame: torch.Tensor, box, text: str, actions, out_png) -> Path:
    """The key frame with the predicted box, the sentence above and the actions beside it (the paper's Fig. 4 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import textwrap

    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    img = key_frame.permute(1, 2, 0).numpy()
    h, w = img.shape[:2]
    fig, ax = plt.subplots(figsize=(8, 8 * h / w + 1.2), dpi=100)
    ax.imshow(img)
    b = [min(1.0, max(0.0, float(v))) for v in box]
    x1, x2, y1, y2 = min(b[0], b[2]), max(b[0], b[2]), min(b[1], b[3]), max(b[1], b[3])  # an untrained head may swap corners
    ax.add_patch(Rectangle((x1 * w, y1 * h), (x2 - x1) * w, (y2 - y1) * h, fill=False, edgecolor="lime", linewidth=3))
    label = "\n".join(f"{n}: {s:.2f}" for n, s in actions)
    ax.text(x1 * w, min(h - 2, y2 * h + 4), label, color="white", fontsize=9, va="top",
            bbox=dict(facecolor="black", alpha=0.6, pad=3))
    ax.set_title("\n".join(textwrap.wrap(f'"{text}"', 80)), fontsize=11)
    ax.axis("off")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
