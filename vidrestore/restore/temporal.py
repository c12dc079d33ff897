"""Temporal rules for choosing CodeFormer codes across the frames of one face track.

Faces of a track are aligned to the same template, so token position i is the same facial spot in
every frame and the code predictions of neighbouring frames can be combined position by position.

``window`` (offline): the softmax of each frame's logits is averaged with its neighbours' in the
same track segment (Gaussian weights over +-k frames; cuts and track ends bound the window), and
the code is the arg-max of the average. The decoder still uses each frame's own encoder features,
so real motion (mouth, eyes) is kept while the code texture stops flickering.

``recurrent`` (causal): each track carries a state, the code probabilities of the previous frame
with a per-position variance. For a new frame the state is carried into the new aligned space
(the two alignments differ by a small known similarity transform) and fused with the new frame's
probabilities by a Kalman-style update: the prior variance grows by a process noise ``q``; the
measurement variance shrinks where the new frame disagrees with the prediction (a changed mouth
or eye), so the gain goes to 1 there and the state is trusted where both agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

GRID = 16  # CodeFormer's token grid is 16x16 over the 512x512 aligned face
FACE = 512


def gaussian_weights(offsets: list[int], window: int) -> list[float]:
    """Normalised Gaussian weights for frame offsets; sigma grows with the window."""
    sigma = max(window / 2.0, 0.5)
    w = [math.exp(-0.5 * (o / sigma) ** 2) for o in offsets]
    s = sum(w)
    return [x / s for x in w]


def window_average(probs: list[torch.Tensor], offsets: list[int], window: int) -> torch.Tensor:
    """Gaussian-weighted average of per-frame code probabilities ``[T, K]`` each."""
    weights = gaussian_weights(offsets, window)
    out = probs[0] * weights[0]
    for p, w in zip(probs[1:], weights[1:], strict=True):
        out = out + p * w
    return out


def relative_grid_transform(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """2x3 map from the current aligned face to the previous one (pixels of the 512 face)."""
    p = np.vstack([prev, [0.0, 0.0, 1.0]])
    c = np.vstack([cur, [0.0, 0.0, 1.0]])
    return (p @ np.linalg.inv(c))[:2]


def carry_probs(probs: torch.Tensor, cur_to_prev: np.ndarray) -> torch.Tensor:
    """Resample a ``[256, K]`` probability grid from the previous aligned space into the current."""
    if np.allclose(cur_to_prev, [[1, 0, 0], [0, 1, 0]], atol=1e-3):
        return probs
    k = probs.shape[-1]
    grid_img = probs.T.reshape(1, k, GRID, GRID)
    # affine_grid works in [-1, 1] coordinates with align_corners=False: pixel u maps to
    # (2u + 1) / FACE - 1, so a pixel-space map M becomes N M N^-1.
    n = np.array([[2.0 / FACE, 0, 1.0 / FACE - 1], [0, 2.0 / FACE, 1.0 / FACE - 1], [0, 0, 1]])
    m = np.vstack([cur_to_prev, [0, 0, 1]])
    theta = (n @ m @ np.linalg.inv(n))[:2]
    theta_t = torch.as_tensor(theta, dtype=probs.dtype, device=probs.device)[None]
    grid = F.affine_grid(theta_t, [1, k, GRID, GRID], align_corners=False)
    out = F.grid_sample(grid_img, grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    out = out.reshape(k, GRID * GRID).T
    return out / out.sum(dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass
class RecurrentState:
    """Per-track state of the causal mode: code probabilities, their variance, the alignment."""

    probs: torch.Tensor  # [256, K]
    var: torch.Tensor  # [256]
    affine: np.ndarray  # 2x3 frame -> aligned of the frame the state belongs to


class RecurrentFilter:
    """Kalman-style fusion of each new frame's code probabilities with the carried state.

    Args:
        gain: gain where a new frame agrees with the prediction (steady-state trust in new data).
        disagreement: Bhattacharyya distance at which a position counts as changed.
    """

    def __init__(self, gain: float = 0.35, disagreement: float = 0.5) -> None:
        self.gain = gain
        self.disagreement = disagreement
        # Steady state of p <- (1-g)(p+q) with r fixed at 1 gives g = p+q / (p+q+1); choose q so
        # that the agreeing-position gain settles at ``gain``.
        self.q = gain * gain / (1.0 - gain) if gain < 1.0 else 1e6
        self.states: dict[int, RecurrentState] = {}

    def reset(self, track_id: int | None = None) -> None:
        """Forget one track (or all): the next frame starts a fresh state."""
        if track_id is None:
            self.states.clear()
        else:
            self.states.pop(track_id, None)

    def update(self, track_id: int, probs: torch.Tensor, affine: np.ndarray) -> torch.Tensor:
        """Fuse ``probs`` ``[256, K]`` of a new frame into the track's state; return the fusion."""
        st = self.states.get(track_id)
        if st is None:
            var = torch.ones(probs.shape[0], dtype=probs.dtype, device=probs.device)
            self.states[track_id] = RecurrentState(probs, var, affine)
            return probs
        pred = carry_probs(st.probs, relative_grid_transform(st.affine, affine))
        prior = st.var + self.q
        bc = (pred.clamp_min(0) * probs.clamp_min(0)).sqrt().sum(dim=-1).clamp(0, 1)
        distance = (1.0 - bc).sqrt()  # Hellinger distance in [0, 1]
        r = torch.exp(-((distance / self.disagreement) ** 2) * 4.0).clamp_min(1e-6)
        gain = prior / (prior + r)
        fused = pred + gain[:, None] * (probs - pred)
        self.states[track_id] = RecurrentState(fused, (1.0 - gain) * prior, affine)
        return fused
