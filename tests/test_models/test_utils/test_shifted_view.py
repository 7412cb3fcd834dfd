import pytest
import torch

from mmcyc.models.utils.shifted_view import (draw_shifts, shift_images,
                                             shift_positions)


def test_shift_images_matches_a_pixel_loop():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 2, 5, 7, generator=gen)
    shift = torch.tensor([[2, -3], [0, 0], [-1, 6]])
    out = shift_images(images, shift)
    expected = torch.zeros_like(images)
    for n in range(3):
        dy, dx = shift[n].tolist()
        for y in range(5):
            for x in range(7):
                if 0 <= y - dy < 5 and 0 <= x - dx < 7:
                    expected[n, :, y, x] = images[n, :, y - dy, x - dx]
    assert torch.equal(out, expected)
    assert torch.equal(out[1], images[1])  # no shift: the image itself


def test_shift_positions_matches_a_loop():
    height, width = 4, 5
    index = torch.tensor([[0, 6, 19, 12], [3, 3, 7, 0]])
    valid = torch.tensor([[True, True, True, False], [True, True, True,
                                                     True]])
    shift = torch.tensor([[1, -1], [-1, 2]])
    moved, moved_valid = shift_positions(index, valid, shift, (height, width))
    for n in range(2):
        dy, dx = shift[n].tolist()
        for s in range(4):
            i, j = divmod(index[n, s].item(), width)
            inside = 0 <= i + dy < height and 0 <= j + dx < width
            assert moved_valid[n, s].item() == (valid[n, s].item() and inside)
            if moved_valid[n, s]:
                assert moved[n, s].item() == (i + dy) * width + j + dx
            else:
                assert moved[n, s].item() == 0
    # cell 0 shifted by (1, -1) leaves the view; cell 6 = (1, 1) -> (2, 0)
    assert not moved_valid[0, 0] and moved[0, 1].item() == 10


def test_image_and_cell_shifts_agree_on_the_stride_grid():
    """Shifting the pixels by s * (dy, dx) moves every stride block by
    (dy, dx) cells: cell (i, j) of A is cell (i + dy, j + dx) of A'."""
    stride = 4
    images = torch.arange(2 * 16 * 12, dtype=torch.float32).view(2, 1, 16, 12)
    shift = torch.tensor([[1, 2], [-2, -1]])
    views = shift_images(images, shift * stride)
    blocks = images.view(2, 4, 4, 3, 4).permute(0, 1, 3, 2, 4)
    view_blocks = views.view(2, 4, 4, 3, 4).permute(0, 1, 3, 2, 4)
    index = torch.arange(12).repeat(2, 1)
    moved, valid = shift_positions(index, torch.ones_like(index, dtype=bool),
                                   shift, (4, 3))
    assert valid.sum() == 3 * 1 + 2 * 2  # cells that stay in view
    for n, s in valid.nonzero().tolist():
        i, j = divmod(s, 3)
        k, m = divmod(moved[n, s].item(), 3)
        assert torch.equal(view_blocks[n, k, m], blocks[n, i, j])


def test_draw_shifts_range_and_seed():
    a = draw_shifts(500, 2, generator=torch.Generator().manual_seed(1))
    b = draw_shifts(500, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (500, 2) and a.dtype == torch.long
    assert set(a.flatten().tolist()) == {-2, -1, 0, 1, 2}
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='max_shift'):
            draw_shifts(2, bad)


def test_shift_images_bad_shapes():
    with pytest.raises(ValueError, match='shift_px'):
        shift_images(torch.zeros(2, 3, 4, 4), torch.zeros(3, 2))
