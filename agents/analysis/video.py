"""Writing frames to video files with moviepy (mp4 through the ffmpeg inside imageio-ffmpeg, or GIF),
and composing imagined-rollout frames: panels side by side under a caption.

    frames = rollout_frames(rollout, decoder.description, objective="both", scale=4)
    write_video(frames, "imagined.mp4", fps=10)

An imagined-rollout frame, for an image side S and upscaling factor f:

    +---------------------------------------------------------------+  CAPTION_HEIGHT
    | episode 1/2 | step 6/33 | imagined 3/30 (open loop)            |
    | decoder fitted on frozen latents (stop-gradient) | ...          |
    +--------------------+--------------------+---------------------+  LABEL_HEIGHT
    | real               | imagined           | |error|             |
    +--------------------+--------------------+---------------------+
    |  S*f x S*f         |  S*f x S*f         |  S*f x S*f          |  (+ masked input, filled in)
    +--------------------+--------------------+---------------------+
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from einops import rearrange

from worldmodel.visualize import MaskedView, Rollout

CAPTION_HEIGHT = 44
"""Pixel rows of the two caption lines above the panels."""
LABEL_HEIGHT = 20
"""Pixel rows of the panel labels."""
_CONTEXT_COLOUR = (60, 170, 60)  # border of the model panel while it shows encoded real frames
_IMAGINED_COLOUR = (230, 120, 20)  # ... and while it imagines


def upscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """`(H, W, 3)` -> `(H * factor, W * factor, 3)` by pixel repetition (sharp, no blur)."""
    return frame.repeat(factor, axis=0).repeat(factor, axis=1)


def check_video_path(path: str | Path) -> Path:
    """`path` as a Path, or a ValueError naming it unless it ends in .mp4 or .gif (any case)."""
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"out={path}: the video must be a .mp4 or .gif file.")
    return path


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 15) -> Path:
    """Frames `(H, W, 3)` uint8 -> `path` (.mp4 or .gif). H and W are padded to even sizes for mp4.

    Written under a temporary name, then renamed: a failure leaves no half-written file at `path`.
    """
    from moviepy import ImageSequenceClip

    if not frames:
        raise ValueError("no frames to write")
    path = check_video_path(path)
    h, w = frames[0].shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    frames = [np.pad(f, pad) if (h % 2 or w % 2) else f for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = ImageSequenceClip([np.ascontiguousarray(f) for f in frames], fps=fps)
    # moviepy writes int(duration * fps) frames, and a duration summed from n steps of 1 / fps can
    # fall just short of n / fps (68 frames at 10 fps gave 67): half a frame more keeps the last one.
    clip = clip.with_duration((len(frames) + 0.5) / fps)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    try:
        if path.suffix.lower() == ".gif":
            clip.write_gif(str(tmp), fps=fps, logger=None)
        else:
            clip.write_videofile(str(tmp), fps=fps, codec="libx264", audio=False, logger=None,
                                 ffmpeg_params=["-pix_fmt", "yuv420p"])
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def text_strip(lines: list[str], width: int, height: int, colours: list[tuple[int, int, int]] | None = None
               ) -> np.ndarray:
    """`lines` of text, white on black, in a `(height, width, 3)` uint8 strip; the font shrinks to fit."""
    strip = np.zeros((height, width, 3), np.uint8)
    font, row = cv2.FONT_HERSHEY_SIMPLEX, height / max(len(lines), 1)
    for i, line in enumerate(lines):
        scale = 0.45
        (w, h), _ = cv2.getTextSize(line, font, scale, 1)
        if w > width - 8:
            scale *= (width - 8) / w
            (w, h), _ = cv2.getTextSize(line, font, scale, 1)
        baseline = int(row * i + (row + h) / 2)
        colour = colours[i] if colours else (255, 255, 255)
        cv2.putText(strip, line, (4, baseline), font, scale, colour, 1, cv2.LINE_AA)
    return strip


def error_image(real: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """Per-pixel |real - shown| (largest over channels) as a heat map: `(H, W, 3)` uint8, black = exact,
    bright = off by the full range."""
    error = np.abs(real.astype(np.int16) - shown.astype(np.int16)).max(axis=-1).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(error, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def compose(panels: list[np.ndarray], labels: list[str], caption: list[str], scale: int,
            borders: dict[int, tuple[int, int, int]] | None = None,
            caption_colours: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """Panels `(S, S, 3)` uint8 side by side, upscaled by `scale`, each under its label, under a caption.

    `borders` maps a panel index to the colour of a frame drawn inside it. Returns
    `(CAPTION_HEIGHT + LABEL_HEIGHT + S * scale, len(panels) * S * scale, 3)` uint8.
    """
    big = [np.ascontiguousarray(upscale(p, scale)) for p in panels]
    side = big[0].shape[1]
    for index, colour in (borders or {}).items():
        cv2.rectangle(big[index], (1, 1), (side - 2, side - 2), colour, 2)
    width = side * len(big)
    label_row = np.concatenate([text_strip([label], side, LABEL_HEIGHT) for label in labels], axis=1)
    return np.concatenate([text_strip(caption, width, CAPTION_HEIGHT, caption_colours), label_row,
                           np.concatenate(big, axis=1)], axis=0)


def imagined_frame_shape(image_size: int, scale: int, panels: int) -> tuple[int, int]:
    """(height, width) of a frame from `rollout_frames` with `panels` panels (3, or 5 with the masked view)."""
    return CAPTION_HEIGHT + LABEL_HEIGHT + image_size * scale, panels * image_size * scale


def rollout_frames(rollout: Rollout, decoder: str, objective: str, scale: int = 4,
                   masked: MaskedView | None = None, title: str = "") -> list[np.ndarray]:
    """One video frame per step of `rollout` (C context steps, then H imagined), panels
    real · imagined · |error| (· masked input · filled in, with `masked`).

    Args:
        rollout: from `worldmodel.visualize.open_loop`.
        decoder: what turned latents into pixels, said in the caption (e.g. `FrameDecoder.description`).
        objective: the model's objective, said in the caption.
        scale: upscaling factor of every panel.
        masked: the masked objective's view of the same steps, from `worldmodel.visualize.masked_view`.
        title: leads the first caption line (e.g. "episode 1/2").

    Returns:
        `C + H` frames `(H', W', 3)` uint8 of the shape `imagined_frame_shape` gives.
    """
    real, decoded = _hwc(rollout.real), _hwc(rollout.decoded)
    context, total = rollout.context, len(rollout.real)
    if masked is not None and len(masked.masked) != total:
        raise ValueError(f"the masked view has {len(masked.masked)} steps, the rollout {total}.")
    mse = (rollout.decoded.float() / 255 - rollout.real.float() / 255).square().flatten(1).mean(1)
    frames = []
    for t in range(total):
        imagining = t >= context
        if imagining:
            where = f"imagined {t - context + 1}/{total - context} (open loop from step {context - 1})"
            label = "imagined"
        else:
            where = f"context {t + 1}/{context} (encoded real frame)"
            label = "context (decoded)"
        head = " | ".join(part for part in (title, f"step {t}/{total - 1}", where) if part)
        caption = [head, f"{decoder} | objective={objective} | pixel mse {float(mse[t]):.4f}"]
        panels = [real[t], decoded[t], error_image(real[t], decoded[t])]
        labels = ["real", label, "|error|"]
        if masked is not None:
            panels += [_hwc(masked.masked[t:t + 1])[0], _hwc(masked.filled[t:t + 1])[0]]
            hidden = float(masked.hidden[t].float().mean())
            labels += [f"masked input ({hidden:.0%} hidden)", f"masked: {masked.label}"]
        colour = _IMAGINED_COLOUR if imagining else _CONTEXT_COLOUR
        frames.append(compose(panels, labels, caption, scale, borders={1: colour},
                              caption_colours=[colour, (255, 255, 255)]))
    return frames


def _hwc(frames: torch.Tensor) -> np.ndarray:
    """`(N, 3, H, W)` uint8 tensor -> `(N, H, W, 3)` uint8 array."""
    return np.ascontiguousarray(rearrange(frames, "n c h w -> n h w c").cpu().numpy())
