"""Episodes of the one-shot task: C classes x K samples in random order, input (x_t, y_{t-1}).

In every episode the classes are drawn afresh and get labels in a random order, so a label means nothing
across episodes: the model must bind it in memory. A model tells L labels apart (its one-hot input and
outputs); an episode of C <= L classes gives them C of the L labels, drawn afresh per episode, so that one
model serves any class count up to L. Shapes: B episodes, T = C * K steps.
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from flmn_core.data.normalise import OMNIGLOT_SIZE, downscale
from flmn_core.model.configs import IMAGE_SIZE

MAX_ROTATION = 11.25  # Experiment II: rotation uniform in [-pi/16, pi/16] (in degrees) ...
MAX_SHIFT = 10.0  # ... and translation uniform in [-10, 10] pixels of the 105 x 105 image


class Episodes(NamedTuple):
    """A batch of episodes.

    images: [B, T, 20, 20] float, ink 1.   labels: [B, T] long, the true label y_t in 0..L-1.
    prev_labels: [B, T, L] one-hot y_{t-1}, zeros at t = 0.   instances: [B, T] long, 1 for the first
    presentation of a class in the episode, 2 for the second, and so on.
    """

    images: torch.Tensor
    labels: torch.Tensor
    prev_labels: torch.Tensor
    instances: torch.Tensor

    def to(self, device):
        """The same episodes on `device` (the tensors themselves where they are on it already)."""
        return Episodes(*(tensor.to(device) for tensor in self))


def offset_labels(labels, labels_):
    """labels [B, T] -> prev_labels [B, T, L]: the one-hot label of the previous step, zeros at t = 0;
    labels_ is L, the size of the label space."""
    one_hot = F.one_hot(labels, labels_).float()
    return torch.cat([torch.zeros_like(one_hot[:, :1]), one_hot[:, :-1]], dim=1)


def instance_numbers(labels, labels_):
    """labels [B, T] (in 0..L-1, L = labels_) -> instances [B, T]: how many times the step's class has appeared
    so far, this one included."""
    one_hot = F.one_hot(labels, labels_)
    return (one_hot.cumsum(1) * one_hot).sum(-1)


def sample_episodes(images, batch_size, generator, classes=5, samples=10, characters=None,
                    raw_images=None, augment=False, rotate_classes=False, widen_strokes=0.0, labels=None,
                    max_rotation=MAX_ROTATION, max_shift=MAX_SHIFT):
    """Sample a batch of episodes.

    images: [num_characters, num_drawings, 20, 20], the preprocessed pool (Omniglot or miniMNIST).
    characters: indices into the pool that may be drawn (a split), or None for all.
    generator: a torch.Generator; the same seed gives the same episodes. Every tensor is made on its device
        (the CPU's generator: the CPU), where the images must be too.
    labels: L, the model's label space (default: classes); each episode's classes get C of the L labels.
    augment (Experiment II): rotate by U[-max_rotation, max_rotation] degrees and shift by
        U[-max_shift, max_shift] px of the 105 x 105 frame (default: pi/16 and 10 px) each image of raw_images [num_characters, num_drawings, S, S] (ink 1; the 105 x 105 originals or
        `data.augmentation_images` of them), then downscale.
    rotate_classes: also draw each character rotated by 0, 90, 180 or 270 degrees as a distinct class
        (Santoro et al.'s augmentation), a fixed rotation per class and episode.
    widen_strokes (a variant; with augment only): before the rotation and shift, widen each image's strokes
        by U[0, widen_strokes] pixels of the 105 x 105 frame (`_widen_strokes`).
    -> Episodes with T = classes * samples.
    """
    labels_ = classes if labels is None else labels
    device = generator.device
    pool = (torch.arange(images.shape[0], device=device) if characters is None
            else torch.as_tensor(characters, device=device))
    drawings = images.shape[1]
    if samples > drawings or classes > len(pool):
        raise ValueError(f"cannot draw {classes} classes x {samples} samples from {len(pool)} classes "
                         f"of {drawings} drawings")
    if classes > labels_:
        raise ValueError(f"an episode of {classes} classes needs at least {classes} labels, not {labels_}")
    B, C, K, T = batch_size, classes, samples, classes * samples
    # Classes: a random subset in random order, so label c of the episode is the c-th class drawn.
    chosen = pool[uniform(generator, B, len(pool)).argsort(1)[:, :C]]  # [B, C]
    # Samples: K distinct drawings per class; then the T steps in random order.
    drawn = uniform(generator, B, C, drawings).argsort(2)[..., :K]  # [B, C, K]
    classes_ = torch.arange(C, device=device).repeat_interleave(K).expand(B, T)
    order = uniform(generator, B, T).argsort(1)
    classes_ = classes_.gather(1, order)  # [B, T], the step's class c, 0..C-1, of the episode
    which = drawn.reshape(B, T).gather(1, order)  # the drawing at each step
    character = chosen.gather(1, classes_)  # [B, T]
    if augment:
        if raw_images is None:
            raise ValueError("augment=True needs raw_images, the 105 x 105 originals")
        raw = raw_images[character, which].float()
        if widen_strokes:
            raw = _widen_strokes(raw, widen_strokes, generator)
        steps = _shift_and_rotate(raw, generator, math.radians(max_rotation), max_shift)
    else:
        steps = images[character, which]
    if rotate_classes:
        turns = torch.randint(0, 4, (B, C), generator=generator, device=device).gather(1, classes_)  # [B, T]
        steps = _rotate_quarter_turns(steps, turns)
    labels = classes_
    if labels_ > C:  # C of the L labels, in random order: class c gets label_of[c]
        label_of = uniform(generator, B, labels_).argsort(1)[:, :C]  # [B, C]
        labels = label_of.gather(1, classes_)
    return Episodes(steps, labels, offset_labels(labels, labels_), instance_numbers(labels, labels_))


def uniform(generator, *shape):
    """U[0, 1) numbers of `shape` from generator, made on its device."""
    return torch.rand(shape, generator=generator, device=generator.device)


def _shift_and_rotate(raw, generator, max_rotation, max_shift):
    """raw [B, T, S, S] -> [B, T, 20, 20]: each image rotated by U[-max_rotation, max_rotation] radians about
    its centre and shifted by U[-max_shift, max_shift] pixels of the 105 x 105 original in x and y (bilinear,
    background 0), then
    downscaled by the common area filter. S may be 105 or a smaller area-downscaled copy (see
    `data.augmentation_images`): rotation and shift commute with scaling, so only interpolation differs."""
    B, T, S = *raw.shape[:2], raw.shape[-1]
    n = B * T
    angle = (uniform(generator, n) * 2 - 1) * max_rotation
    shift = (uniform(generator, n, 2) * 2 - 1) * max_shift * 2 / OMNIGLOT_SIZE  # normalised units
    moved = F.grid_sample(raw.reshape(n, 1, S, S), _affine_grid(angle, shift, S), align_corners=False)
    return downscale(moved[:, 0]).reshape(B, T, IMAGE_SIZE, IMAGE_SIZE)


def _widen_strokes(raw, widest, generator):
    """raw [B, T, S, S] -> the same images with each one's strokes widened by U[0, widest] pixels of the 105 x 105
    frame (half on each side). Omniglot was drawn with one pen (strokes 4.4 to 5.3 px wide, see
    images.PEN_WIDTH); other sources, MNIST's digits among them (5 to 12 px), use wider ones. Whole pixels of
    widening are 3 x 3 dilations; the fraction left blends in the next dilation's ring at partial ink."""
    B, T = raw.shape[:2]
    per_side = uniform(generator, B, T, 1, 1) * widest * raw.shape[-1] / OMNIGLOT_SIZE / 2  # pixels here
    out = grown = raw
    for ring in range(math.ceil(widest * raw.shape[-1] / OMNIGLOT_SIZE / 2)):
        wider = _dilate(grown)
        out = out + (per_side - ring).clamp(0, 1) * (wider - grown)
        grown = wider
    return out


def _dilate(images):
    """images [..., H, W] (background 0) -> each pixel the largest of its 3 x 3 neighbourhood. The same as
    F.max_pool2d(3, stride=1, padding=1), written as two passes of maxima: a tenth of its time on the CPU."""
    padded = F.pad(images, (1, 1, 1, 1))
    rows = torch.maximum(torch.maximum(padded[..., :, :-2], padded[..., :, 1:-1]), padded[..., :, 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _affine_grid(angle, shift, size):
    """The sampling grid of a rotation by angle [n] and a shift [n, 2] (normalised units) for size x size
    images -> [n, size, size, 2]. Equal to F.affine_grid(align_corners=False) for these matrices, written
    out because F.affine_grid's general batched matmul is several times slower on the CPU."""
    # pixel centres in [-1, 1]
    coords = (torch.arange(size, dtype=torch.float32, device=angle.device) * 2 + 1) / size - 1
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    x, y = coords[None, None, :], coords[None, :, None]
    grid_x = cos * x - sin * y + shift[:, 0, None, None]
    grid_y = sin * x + cos * y + shift[:, 1, None, None]
    return torch.stack([grid_x, grid_y], dim=-1)


def _rotate_quarter_turns(steps, turns):
    """steps [B, T, H, W], turns [B, T] in 0..3 -> each image rotated by turns x 90 degrees."""
    out = steps.clone()
    for k in range(1, 4):
        mask = turns == k
        if mask.any():
            out[mask] = torch.rot90(steps[mask], k, dims=(-2, -1))
    return out
