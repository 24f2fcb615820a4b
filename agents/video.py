"""Writing frames to video files with moviepy (mp4 through the ffmpeg inside imageio-ffmpeg, or GIF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def upscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """`(H, W, 3)` -> `(H * factor, W * factor, 3)` by pixel repetition (sharp, no blur)."""
    return frame.repeat(factor, axis=0).repeat(factor, axis=1)


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 15) -> Path:
    """Frames `(H, W, 3)` uint8 -> `path` (.mp4 or .gif). H and W are padded to even sizes for mp4."""
    from moviepy import ImageSequenceClip

    path = Path(path)
    if not frames:
        raise ValueError("no frames to write")
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"{path.name}: write .mp4 or .gif")
    h, w = frames[0].shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    frames = [np.pad(f, pad) if (h % 2 or w % 2) else f for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = ImageSequenceClip([np.ascontiguousarray(f) for f in frames], fps=fps)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if path.suffix.lower() == ".gif":
        clip.write_gif(str(tmp), fps=fps, logger=None)
    else:
        clip.write_videofile(str(tmp), fps=fps, codec="libx264", audio=False, logger=None,
                             ffmpeg_params=["-pix_fmt", "yuv420p"])
    tmp.replace(path)
    return path
