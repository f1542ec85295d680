"""The offline character generator: deterministic, shaped like Omniglot, and characters tell apart."""

import numpy as np
import pytest
import torch

from flmn_core import sample_episodes
from flmn_core.data import glyphs
from flmn_core.data.normalise import OMNIGLOT_SIZE


def test_alphabet_is_deterministic_by_seed():
    assert glyphs.make_alphabet(6, seed=3) == glyphs.make_alphabet(6, seed=3)
    assert glyphs.make_alphabet(6, seed=3) != glyphs.make_alphabet(6, seed=4)


def test_characters_are_strokes_inside_the_frame():
    for character in glyphs.make_alphabet(30, seed=0):
        assert 1 <= len(character.strokes) <= 4
        assert character.strokes[0].kind != "dot"
        points = np.array([p for s in character.strokes for p in s.points])
        assert points.min() >= glyphs.MARGIN - 1e-6 and points.max() <= OMNIGLOT_SIZE - glyphs.MARGIN + 1e-6
        for stroke in character.strokes:
            assert stroke.kind in glyphs.STROKE_KINDS[0]
            assert (len(stroke.points) == 1) == (stroke.kind == "dot")


def test_render_is_black_ink_on_white_and_deterministic():
    character = glyphs.make_alphabet(1, seed=5)[0]
    image = glyphs.render(character, drawer_seed=7)
    assert image.shape == (OMNIGLOT_SIZE, OMNIGLOT_SIZE) and image.dtype == np.uint8
    assert set(np.unique(image)) <= {0, 255}
    ink = (image == 0).mean()
    assert 0.01 < ink < 0.3, f"ink covers {ink:.1%} of the frame"
    assert (image[0] == 255).all() and (image[:, 0] == 255).all()  # white border: preprocess reads ink as dark
    assert np.array_equal(image, glyphs.render(character, drawer_seed=7))
    assert not np.array_equal(image, glyphs.render(character, drawer_seed=8))


def test_pool_shape_range_and_determinism():
    pool = glyphs.sample_glyph_pool(4, 3, seed=0)
    assert pool.shape == (4, 3, 20, 20) and pool.dtype == torch.float32
    assert pool.min() >= 0 and pool.max() <= 1
    assert (pool.flatten(2).max(-1).values > 0.5).all()  # every drawing has ink
    assert torch.equal(pool, glyphs.sample_glyph_pool(4, 3, seed=0))
    assert not torch.equal(pool, glyphs.sample_glyph_pool(4, 3, seed=1))


def test_drawings_of_one_character_are_closer_than_different_characters():
    pool = glyphs.sample_glyph_pool(12, 6, seed=0)
    C, D = pool.shape[:2]
    flat = pool.reshape(C * D, -1)
    distance = torch.cdist(flat, flat, p=1) / flat.shape[1]  # mean absolute pixel difference
    label = torch.arange(C).repeat_interleave(D)
    same = label[:, None] == label[None]
    within = distance[same & ~torch.eye(C * D, dtype=torch.bool)].mean()
    between = distance[~same].mean()
    assert within > 0, "drawings of a character should vary"
    assert within < 0.8 * between, f"within {within:.4f} vs between {between:.4f}"


def test_pool_feeds_sample_episodes():
    pool = glyphs.sample_glyph_pool(6, 10, seed=2)
    batch = sample_episodes(pool, 2, torch.Generator().manual_seed(0), classes=5, samples=10)
    assert batch.images.shape == (2, 50, 20, 20)
    assert batch.prev_labels.shape == (2, 50, 5)


@pytest.mark.parametrize("classes, drawings", [(0, 3), (3, 0), (2.5, 3), (3, -1)])
def test_bad_sizes_are_refused(classes, drawings):
    with pytest.raises(ValueError, match="positive integer"):
        glyphs.sample_glyph_pool(classes, drawings, seed=0)
