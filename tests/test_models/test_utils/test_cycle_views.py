import pytest
import torch

from mmcyc.models.utils.cycle_views import (crop_images, draw_offsets,
                                            opposite_corners, shift_positions)


def test_crop_images_matches_a_pixel_loop():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 2, 5, 7, generator=gen)
    offset = torch.tensor([[2, 3], [0, 0], [1, 4]])
    out = crop_images(images, offset, (3, 3))
    assert out.shape == (3, 2, 3, 3)
    for n in range(3):
        oy, ox = offset[n].tolist()
        for y in range(3):
            for x in range(3):
                assert torch.equal(out[n, :, y, x],
                                   images[n, :, oy + y, ox + x])
    full = crop_images(images, torch.zeros(3, 2, dtype=torch.long), (5, 7))
    assert torch.equal(full, images)


def test_crop_images_refuses_crops_leaving_the_image():
    images = torch.zeros(2, 1, 6, 6)
    with pytest.raises(ValueError, match=r'leave the 6 x 6 images'):
        crop_images(images, torch.tensor([[0, 0], [3, 0]]), (4, 4))
    with pytest.raises(ValueError, match='offset_px'):
        crop_images(images, torch.zeros(3, 2), (4, 4))


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


def test_two_crops_and_the_cell_shift_agree_on_the_stride_grid():
    """Cell (i, j) of the crop at o1 shows the pixels of cell (i, j) + o1 - o2
    of the crop at o2 (offsets in cells, pixels = stride x cells)."""
    stride, cells = 4, (3, 2)  # crops of 3 x 2 cells from 5 x 4 cells
    images = torch.arange(2 * 20 * 16, dtype=torch.float32).view(2, 1, 20, 16)
    o1 = torch.tensor([[2, 0], [0, 1]])
    o2 = torch.tensor([[0, 2], [1, 0]])
    size = (cells[0] * stride, cells[1] * stride)
    start = crop_images(images, o1 * stride, size)
    back = crop_images(images, o2 * stride, size)

    def block(view, n, i, j):
        return view[n, 0, i * stride:(i + 1) * stride,
                    j * stride:(j + 1) * stride]

    index = torch.arange(6).repeat(2, 1)
    moved, valid = shift_positions(index, torch.ones_like(index, dtype=bool),
                                   o1 - o2, cells)
    assert valid.sum() == 1 * 0 + 2 * 1  # overlaps: none, then 2 x 1 cells
    for n, s in valid.nonzero().tolist():
        i, j = divmod(s, cells[1])
        k, m = divmod(moved[n, s].item(), cells[1])
        assert torch.equal(block(back, n, k, m), block(start, n, i, j))


def test_draw_offsets_range_and_seed():
    a = draw_offsets(500, 2, generator=torch.Generator().manual_seed(1))
    b = draw_offsets(500, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (500, 2) and a.dtype == torch.long
    assert set(a.flatten().tolist()) == {0, 1, 2}
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='max_shift'):
            draw_offsets(2, bad)


def test_opposite_corners():
    start, back = opposite_corners(400, 3,
                                   generator=torch.Generator().manual_seed(0))
    assert start.shape == back.shape == (400, 2)
    assert set(start.flatten().tolist()) == {0, 3}
    assert torch.equal(start + back, torch.full((400, 2), 3))
    # the four corners all occur; the shift is (+-3, +-3), never smaller
    assert len({tuple(o) for o in start.tolist()}) == 4
    assert (start - back).abs().eq(3).all()
    with pytest.raises(ValueError, match='max_shift'):
        opposite_corners(2, 0)
