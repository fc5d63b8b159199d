"""Downstream-task builders: shapes, ranges and exact values."""

import pytest
import torch

from rcl import tasks


@pytest.mark.parametrize("task", tasks.TASKS)
def test_shapes_and_range(task, rng):
    y = torch.rand(3, 3, 33, 40, generator=rng)
    x, t = tasks.make_task(task, y, rng)
    assert x.shape == t.shape == (3, 3, 32, 40)
    assert x.min() >= 0 and x.max() <= 1
    assert torch.equal(t, y[..., :32, :40])


def test_bayer_mask_partition():
    for pattern in tasks.BAYER_PATTERNS:
        m = tasks.bayer_mask(6, 8, pattern)
        assert torch.equal(m.sum(0), torch.ones(6, 8))
        assert m[1].sum() == 2 * m[0].sum() == 2 * m[2].sum()
    m = tasks.bayer_mask(2, 2, "RGGB")
    assert m[0, 0, 0] == 1 and m[1, 0, 1] == 1 and m[1, 1, 0] == 1 and m[2, 1, 1] == 1


@pytest.mark.parametrize("pattern", tasks.BAYER_PATTERNS)
def test_demosaic_keeps_sampled_pixels_exactly(pattern, rng):
    y = torch.rand(2, 3, 16, 20, generator=rng)
    x, t = tasks.make_task("demosaic", y, rng, pattern=pattern)
    m = tasks.bayer_mask(16, 20, pattern).bool().expand_as(t)
    assert torch.equal(x[m], t[m])
    assert not torch.allclose(x, t)


def test_bilinear_demosaic_exact_on_constant_and_linear_images():
    c = torch.full((1, 3, 12, 12), 0.3)
    torch.testing.assert_close(tasks.bilinear_demosaic(tasks.mosaic(c)), c)
    ramp = torch.linspace(0, 1, 12).expand(1, 3, 12, 12).contiguous()
    out = tasks.bilinear_demosaic(tasks.mosaic(ramp))
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ramp[..., 1:-1, 1:-1])  # bilinear is exact on ramps


def test_sr_is_identity_on_constant_images(rng):
    c = torch.full((1, 3, 16, 16), 0.6)
    x, t = tasks.make_task("sr", c, rng)
    torch.testing.assert_close(x, t)
    assert tasks.bicubic_down(c).shape[-2:] == (8, 8)


def test_noisy_tasks_add_noise_clean_ones_do_not(rng):
    y = torch.full((1, 3, 32, 32), 0.5)
    x_sr, _ = tasks.make_task("sr", y, rng)
    x_jd, _ = tasks.make_task("jdensr", y, rng, sigma_range=(10, 20))
    x_dn, _ = tasks.make_task("denoise", y, rng, sigma_range=(10, 20))
    assert x_sr.std() < 1e-5 and x_jd.std() > 0.01 and x_dn.std() > 0.03


def test_unknown_task_and_bad_pattern():
    with pytest.raises(ValueError, match="valid tasks"):
        tasks.make_task("deblur", torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="RGGB"):
        tasks.bayer_mask(4, 4, "RGBG")
