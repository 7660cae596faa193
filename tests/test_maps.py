"""Tests for live/maps.py: blobs to maps, normalization, tiling, colormaps.

Every normalization is checked against a plain reference written here: a
per-channel loop in float64 that maps ``lo -> 0`` and ``hi -> 255`` with
``floor((v - lo) * 255 / (hi - lo) + 0.5)``, clipped to 0..255. The builder
works in float32, so results may differ from the reference by one level.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from live import maps as lm
from live.errors import UsageError

TOL = 1  # uint8 levels the float32 pipeline may differ from the float64 reference


def make_grid(blob: np.ndarray, norm: str = "map", **options: object) -> lm.Grid:
    """One grid of a blob with a fresh builder for these options (as the window and the CLI build them)."""
    return lm.GridOptions(norm, **options).builder().build(blob)  # type: ignore[arg-type]


# ---------------------------------------------------------------- references
def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def ref_scale(m: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """One map scaled so that lo -> 0 and hi -> 255 (rounded, clipped); int64."""
    v = np.asarray(m, np.float64)
    span = float(hi) - float(lo)
    if not span > 0:
        return np.zeros(v.shape, np.int64)
    out = np.floor((v - float(lo)) * (255.0 / span) + 0.5)
    return np.clip(out, 0, 255).astype(np.int64)


def ref_map_norm(maps: np.ndarray) -> np.ndarray:
    """Each map min-max on its own, one channel at a time."""
    out = np.zeros(maps.shape, np.int64)
    for c in range(maps.shape[0]):
        m = np.asarray(maps[c], np.float64)
        out[c] = ref_scale(m, m.min(), m.max())
    return out


def ref_layer_norm(maps: np.ndarray) -> np.ndarray:
    """DIGITS style: subtract the layer-wide min, divide by the layer-wide max - min."""
    lo, hi = float(np.min(maps)), float(np.max(maps))
    out = np.zeros(maps.shape, np.int64)
    for c in range(maps.shape[0]):
        out[c] = ref_scale(maps[c], lo, hi)
    return out


def ref_range_norm(maps: np.ndarray, lo: float, hi: float) -> np.ndarray:
    out = np.zeros(maps.shape, np.int64)
    for c in range(maps.shape[0]):
        out[c] = ref_scale(maps[c], lo, hi)
    return out


def tiles(grid: lm.Grid) -> np.ndarray:
    """The grid's tiles cut out again, in channel order: (C, h, w) int64."""
    lay = grid.layout
    out = np.zeros((lay.count, lay.map_h, lay.map_w), np.int64)
    for ch in range(lay.count):
        x, y, w, h = lay.tile_rect(ch)
        out[ch] = grid.image[y : y + h, x : x + w]
    return out


def tile_mask(layout: lm.GridLayout) -> np.ndarray:
    """True on pixels that belong to a (used) tile."""
    mask = np.zeros(layout.shape, bool)
    for ch in range(layout.count):
        x, y, w, h = layout.tile_rect(ch)
        mask[y : y + h, x : x + w] = True
    return mask


def assert_close(got: np.ndarray, want: np.ndarray, tol: int = TOL) -> None:
    got = np.asarray(got, np.int64)
    want = np.asarray(want, np.int64)
    assert got.shape == want.shape
    diff = np.abs(got - want)
    assert diff.max(initial=0) <= tol, f"max difference {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}"


# ---------------------------------------------------------------- blob_to_maps
class TestBlobToMaps:
    def test_rank1_vector(self) -> None:
        blob = np.arange(7, dtype=np.float32)
        maps = lm.blob_to_maps(blob)
        assert maps.shape == (7, 1, 1)
        assert maps.dtype == np.float32
        np.testing.assert_array_equal(maps[:, 0, 0], blob)

    def test_rank0_scalar(self) -> None:
        maps = lm.blob_to_maps(np.float32(3.5))
        assert maps.shape == (1, 1, 1)
        assert maps[0, 0, 0] == 3.5

    def test_rank2_nc_gives_c_maps_of_1x1(self) -> None:
        blob = rng_for(1).standard_normal((2, 10)).astype(np.float32)
        maps = lm.blob_to_maps(blob)
        assert maps.shape == (10, 1, 1)
        np.testing.assert_array_equal(maps[:, 0, 0], blob[0])
        np.testing.assert_array_equal(lm.blob_to_maps(blob, batch=1)[:, 0, 0], blob[1])

    def test_rank3_ncl_gives_c_maps_of_1xl(self) -> None:
        blob = rng_for(2).standard_normal((1, 6, 13)).astype(np.float32)
        maps = lm.blob_to_maps(blob)
        assert maps.shape == (6, 1, 13)
        for c in range(6):
            np.testing.assert_array_equal(maps[c, 0], blob[0, c])

    def test_rank4_nchw_is_a_view(self) -> None:
        blob = rng_for(3).standard_normal((1, 64, 56, 56)).astype(np.float32)
        maps = lm.blob_to_maps(blob)
        assert maps.shape == (64, 56, 56)
        np.testing.assert_array_equal(maps, blob[0])
        assert np.shares_memory(maps, blob)

    def test_rank4_nhwc_explicit(self) -> None:
        blob = rng_for(4).standard_normal((1, 4, 5, 3)).astype(np.float32)
        maps = lm.blob_to_maps(blob, layout="nhwc")
        assert maps.shape == (3, 4, 5)
        for c in range(3):
            np.testing.assert_array_equal(maps[c], blob[0, :, :, c])

    def test_rank4_nchw_explicit_overrides_the_guess(self) -> None:
        blob = rng_for(5).standard_normal((1, 8, 8, 16)).astype(np.float32)
        maps = lm.blob_to_maps(blob, layout="nchw")
        assert maps.shape == (8, 8, 16)
        np.testing.assert_array_equal(maps, blob[0])

    def test_auto_detects_nhwc(self) -> None:
        blob = rng_for(6).standard_normal((1, 56, 56, 64)).astype(np.float32)
        maps = lm.blob_to_maps(blob)
        assert maps.shape == (64, 56, 56)
        for c in (0, 17, 63):
            np.testing.assert_array_equal(maps[c], blob[0, :, :, c])

    def test_auto_keeps_nchw(self) -> None:
        blob = rng_for(7).standard_normal((1, 64, 56, 56)).astype(np.float32)
        maps = lm.blob_to_maps(blob)
        assert maps.shape == (64, 56, 56)
        np.testing.assert_array_equal(maps, blob[0])

    @pytest.mark.parametrize(
        "shape",
        [(1, 3, 224, 224), (1, 56, 56, 56), (1, 2048, 7, 7), (1, 16, 8, 8)],
    )
    def test_auto_leaves_ordinary_nchw_alone(self, shape: tuple[int, ...]) -> None:
        blob = np.zeros(shape, np.float32)
        assert lm.blob_to_maps(blob).shape == shape[1:]

    def test_auto_nhwc_imagenet_tail(self) -> None:
        blob = np.zeros((1, 7, 7, 2048), np.float32)
        assert lm.blob_to_maps(blob).shape == (2048, 7, 7)

    def test_rank5_volumes_become_c_times_d_maps(self) -> None:
        blob = rng_for(8).standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
        maps = lm.blob_to_maps(blob)
        assert maps.shape == (6, 4, 5)
        for c in range(2):
            for d in range(3):
                np.testing.assert_array_equal(maps[c * 3 + d], blob[0, c, d])

    def test_batch_selection(self) -> None:
        blob = rng_for(9).standard_normal((3, 4, 5, 6)).astype(np.float32)
        for b in range(3):
            np.testing.assert_array_equal(lm.blob_to_maps(blob, batch=b), blob[b])

    @pytest.mark.parametrize("batch", [3, 10, -1])
    def test_batch_out_of_range(self, batch: int) -> None:
        blob = np.zeros((3, 4, 5, 6), np.float32)
        with pytest.raises(UsageError, match="batch"):
            lm.blob_to_maps(blob, batch=batch)

    def test_batch_out_of_range_rank2(self) -> None:
        with pytest.raises(UsageError):
            lm.blob_to_maps(np.zeros((1, 10), np.float32), batch=1)

    def test_batch_out_of_range_through_builder(self) -> None:
        with pytest.raises(UsageError):
            lm.GridBuilder().build(np.zeros((2, 4, 5, 6), np.float32), batch=2)

    @pytest.mark.parametrize(
        "blob",
        [
            np.array([["a", "b"]]),
            np.array([[1 + 2j, 3j]]),
            np.array([[object(), object()]], dtype=object),
        ],
        ids=["str", "complex", "object"],
    )
    def test_non_numeric_dtype(self, blob: np.ndarray) -> None:
        with pytest.raises(UsageError, match="dtype"):
            lm.blob_to_maps(blob)

    def test_unknown_layout(self) -> None:
        with pytest.raises(UsageError):
            lm.blob_to_maps(np.zeros((1, 2, 3, 3), np.float32), layout="chw")

    @pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.int64, np.float16, np.float64, np.bool_])
    def test_other_numeric_dtypes_become_float32(self, dtype: type) -> None:
        blob = (rng_for(10).integers(0, 2, (1, 3, 4, 4))).astype(dtype)
        maps = lm.blob_to_maps(blob)
        assert maps.dtype == np.float32
        np.testing.assert_array_equal(maps, blob[0].astype(np.float32))

    def test_int_blob_builds_a_grid(self) -> None:
        blob = rng_for(11).integers(-50, 50, (1, 5, 6, 6)).astype(np.int32)
        grid = lm.GridOptions("map").builder().build(blob)
        assert_close(tiles(grid), ref_map_norm(blob[0]))


# ---------------------------------------------------------------- normalization
class TestNormalization:
    def test_map_mode_matches_reference(self) -> None:
        rng = rng_for(20)
        # very different scales and offsets per channel
        blob = (rng.standard_normal((1, 12, 9, 11)) * rng.uniform(0.01, 100, (1, 12, 1, 1))).astype(np.float32)
        blob += rng.uniform(-50, 50, (1, 12, 1, 1)).astype(np.float32)
        grid = lm.GridOptions("map").builder().build(blob)
        got = tiles(grid)
        assert_close(got, ref_map_norm(blob[0]))
        # each map spans the full range
        assert (got.min(axis=(1, 2)) == 0).all()
        assert (got.max(axis=(1, 2)) == 255).all()
        np.testing.assert_allclose(grid.lo, blob[0].min(axis=(1, 2)))
        np.testing.assert_allclose(grid.hi, blob[0].max(axis=(1, 2)))
        assert grid.lo.dtype == np.float32 and grid.lo.shape == (12,)
        assert grid.finite

    def test_layer_mode_is_digits_style(self) -> None:
        rng = rng_for(21)
        # all positive and far from zero: "divide by max" would give a different answer
        blob = rng.uniform(5.0, 10.0, (1, 8, 7, 7)).astype(np.float32)
        blob[0, 3] *= 1.5
        grid = lm.GridOptions("layer").builder().build(blob)
        got = tiles(grid)
        assert_close(got, ref_layer_norm(blob[0]))
        lo, hi = blob.min(), blob.max()
        np.testing.assert_allclose(grid.lo, np.full(8, lo))
        np.testing.assert_allclose(grid.hi, np.full(8, hi))
        assert got.min() == 0 and got.max() == 255
        # the dimmer maps do not reach full scale on their own
        assert got[0].max() < 255
        # and this is not "divide by max"
        divide_by_max = np.floor(blob[0].astype(np.float64) / hi * 255 + 0.5)
        assert np.abs(got - divide_by_max).max() > 50

    def test_robust_mode_matches_np_percentile(self) -> None:
        rng = rng_for(22)
        blob = rng.standard_normal((1, 16, 16, 16)).astype(np.float32)  # 4096 values, no subsampling
        blob[0, 2, 3, 4] = 40.0  # outliers
        blob[0, 5, 0, 0] = -40.0
        grid = lm.GridOptions("robust").builder().build(blob)
        plo, phi = np.percentile(blob, [1.0, 99.0])
        np.testing.assert_allclose(grid.lo, np.full(16, plo), rtol=1e-5)
        np.testing.assert_allclose(grid.hi, np.full(16, phi), rtol=1e-5)
        got = tiles(grid)
        assert_close(got, ref_range_norm(blob[0], plo, phi))
        # outliers saturate instead of squashing everything else
        assert got[2, 3, 4] == 255
        assert got[5, 0, 0] == 0
        assert (got[blob[0] >= phi + 1e-3] == 255).all()
        assert (got[blob[0] <= plo - 1e-3] == 0).all()

    @pytest.mark.parametrize("percentiles", [(5.0, 95.0), (0.0, 100.0), (25.0, 50.0)])
    def test_robust_mode_custom_percentiles(self, percentiles: tuple[float, float]) -> None:
        blob = rng_for(23).exponential(2.0, (1, 6, 20, 20)).astype(np.float32)  # 2400 values
        grid = lm.GridOptions("robust", percentiles=percentiles).builder().build(blob)
        plo, phi = np.percentile(blob, percentiles)
        assert_close(tiles(grid), ref_range_norm(blob[0], plo, phi))

    def test_robust_full_range_equals_layer(self) -> None:
        blob = rng_for(24).standard_normal((1, 5, 8, 8)).astype(np.float32)
        robust = lm.GridOptions("robust", percentiles=(0.0, 100.0)).builder().build(blob).image.copy()
        layer = lm.GridOptions("layer").builder().build(blob).image
        assert_close(robust, layer)

    def test_robust_mode_on_a_big_layer_uses_a_sample(self) -> None:
        blob = rng_for(25).standard_normal((1, 64, 32, 32)).astype(np.float32)  # 65536 values
        blob += np.linspace(0.0, 6.0, 64, dtype=np.float32)[None, :, None, None]  # the sample must span all maps
        grid = lm.GridOptions("robust").builder().build(blob)
        plo, phi = np.percentile(blob, [1.0, 99.0])
        # estimated from a subsample: close to, not equal to, the true percentiles
        assert abs(float(grid.lo[0]) - plo) < 0.15
        assert abs(float(grid.hi[0]) - phi) < 0.15
        got = tiles(grid)
        assert got.min() == 0 and got.max() == 255
        assert_close(got, ref_range_norm(blob[0], float(grid.lo[0]), float(grid.hi[0])))

    def test_fixed_mode_clips(self) -> None:
        blob = (rng_for(26).standard_normal((1, 6, 10, 10)) * 3).astype(np.float32)
        grid = lm.GridOptions("fixed", value_range=(-2.0, 4.0)).builder().build(blob)
        got = tiles(grid)
        assert_close(got, ref_range_norm(blob[0], -2.0, 4.0))
        assert (got[blob[0] >= 4.0] == 255).all()
        assert (got[blob[0] <= -2.0] == 0).all()
        assert (blob[0] > 4.0).any() and (blob[0] < -2.0).any()
        np.testing.assert_array_equal(grid.lo, np.full(6, -2.0, np.float32))
        np.testing.assert_array_equal(grid.hi, np.full(6, 4.0, np.float32))

    def test_fixed_mode_is_independent_of_the_data(self) -> None:
        blob = np.zeros((1, 2, 2, 2), np.float32)
        blob[0, 0] = [[0.0, 1.0], [2.0, 3.0]]
        blob[0, 1] = [[10.0, -10.0], [1.5, 1.5]]
        grid = lm.GridOptions("fixed", value_range=(0, 3), pad=0).builder().build(blob)
        got = tiles(grid)
        np.testing.assert_array_equal(got[0], [[0, 85], [170, 255]])
        np.testing.assert_array_equal(got[1], [[255, 0], [128, 128]])

    @pytest.mark.parametrize("norm", ["map", "layer", "robust", "fixed"])
    def test_exact_known_values(self, norm: str) -> None:
        # 0..4 on a 1x5 map: every mode with range (0, 4) gives 0, 64, 128, 191, 255
        blob = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)
        kwargs: dict[str, object] = {"layout": "nchw", "pad": 0}
        if norm == "fixed":
            kwargs["value_range"] = (0.0, 4.0)
        if norm == "robust":
            kwargs["percentiles"] = (0.0, 100.0)
        grid = make_grid(blob, norm, **kwargs)
        np.testing.assert_array_equal(grid.image, [[0, 64, 128, 191, 255]])

    def test_constant_maps_give_zero_and_do_not_affect_others(self) -> None:
        rng = rng_for(27)
        blob = rng.standard_normal((1, 6, 8, 8)).astype(np.float32)
        blob[0, 1] = 7.0
        blob[0, 4] = 0.0
        grid = lm.GridOptions("map").builder().build(blob)
        got = tiles(grid)
        assert (got[1] == 0).all()
        assert (got[4] == 0).all()
        want = ref_map_norm(blob[0])
        for c in (0, 2, 3, 5):
            assert_close(got[c], want[c])
        assert grid.finite

    @pytest.mark.parametrize("norm", ["layer", "robust"])
    def test_constant_layer_gives_zero(self, norm: str) -> None:
        blob = np.full((1, 4, 5, 5), 3.25, np.float32)
        grid = make_grid(blob, norm)
        assert (grid.image == 0).all()
        assert grid.finite

    def test_vector_output_falls_back_to_layer_scaling(self) -> None:
        blob = np.arange(10, dtype=np.float32).reshape(1, 10)
        grid = lm.GridOptions("map").builder().build(blob)
        assert grid.layout.map_h == grid.layout.map_w == 1
        got = tiles(grid)[:, 0, 0]
        assert len(set(got.tolist())) == 10  # not all 0 as a per-map min-max would give
        np.testing.assert_array_equal(got, np.floor(np.arange(10) * 255 / 9 + 0.5))
        layer = tiles(lm.GridOptions("layer").builder().build(blob))[:, 0, 0]
        np.testing.assert_array_equal(got, layer)
        np.testing.assert_allclose(grid.lo, np.zeros(10))
        np.testing.assert_allclose(grid.hi, np.full(10, 9.0))

    def test_vector_output_random(self) -> None:
        blob = rng_for(28).standard_normal((1, 1000)).astype(np.float32)
        grid = lm.GridOptions("map").builder().build(blob)
        got = tiles(grid)
        assert_close(got, ref_layer_norm(blob[0].reshape(-1, 1, 1)))

    def test_sequence_maps_use_map_mode(self) -> None:
        blob = (rng_for(29).standard_normal((1, 4, 30)) * [[[1], [10], [100], [1000]]]).astype(np.float32)
        grid = lm.GridOptions("map").builder().build(blob)
        assert (grid.layout.map_h, grid.layout.map_w) == (1, 30)
        got = tiles(grid)
        assert_close(got, ref_map_norm(blob[0].reshape(4, 1, 30)))
        assert (got.max(axis=(1, 2)) == 255).all()

    def test_float64_blob(self) -> None:
        blob = rng_for(30).standard_normal((1, 3, 6, 6))
        grid = lm.GridOptions("map").builder().build(blob)
        assert_close(tiles(grid), ref_map_norm(blob[0]))


# ---------------------------------------------------------------- NaN and Inf
def _bad_blob(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A clean blob and a copy whose map 2 holds NaN, +Inf and -Inf.

    Map 2 is scaled down so that the layer-wide extremes lie in other maps and
    its bad pixels are replaced, in the clean copy, by a value inside the range.
    """
    rng = rng_for(seed)
    clean = rng.uniform(-1.0, 1.0, (1, 5, 8, 8)).astype(np.float32)
    clean[0, 0, 0, 0] = -1.0
    clean[0, 4, 7, 7] = 1.0
    clean[0, 2] *= 0.5
    bad = clean.copy()
    bad[0, 2, 1, 1] = np.nan
    bad[0, 2, 2, 5] = np.inf
    bad[0, 2, 6, 3] = -np.inf
    clean[0, 2, 1, 1] = clean[0, 2, 2, 5] = clean[0, 2, 6, 3] = 0.0
    return clean, bad


class TestNonFinite:
    @pytest.mark.parametrize("norm", ["map", "layer", "fixed"])
    def test_bad_values_stay_in_their_map(self, norm: str) -> None:
        clean, bad = _bad_blob(40)
        options: dict[str, object] = {"value_range": (-1.0, 1.0)} if norm == "fixed" else {}
        want = tiles(make_grid(clean, norm, **options))
        grid = make_grid(bad, norm, **options)
        assert grid.finite is False
        got = tiles(grid)
        for c in (0, 1, 3, 4):
            np.testing.assert_array_equal(got[c], want[c])
        assert np.isfinite(grid.lo).all() and np.isfinite(grid.hi).all()
        # the bad map itself: NaN -> 0, +Inf -> 255, -Inf -> 0
        assert got[2, 1, 1] == 0
        assert got[2, 2, 5] == 255
        assert got[2, 6, 3] == 0

    def test_bad_map_in_map_mode_is_scaled_on_its_finite_values(self) -> None:
        _, bad = _bad_blob(41)
        grid = make_grid(bad, "map")
        finite = np.isfinite(bad[0, 2])
        vals = bad[0, 2][finite]
        want = ref_scale(np.where(finite, bad[0, 2], vals.min()), vals.min(), vals.max())
        assert_close(tiles(grid)[2][finite], want[finite])
        assert grid.lo[2] == vals.min() and grid.hi[2] == vals.max()

    def test_robust_mode_ignores_bad_values(self) -> None:
        _, bad = _bad_blob(42)
        grid = make_grid(bad, "robust")
        assert grid.finite is False
        finite = bad[np.isfinite(bad)]
        plo, phi = np.percentile(finite, [1.0, 99.0])
        np.testing.assert_allclose(grid.lo, np.full(5, plo), rtol=1e-5)
        np.testing.assert_allclose(grid.hi, np.full(5, phi), rtol=1e-5)
        got = tiles(grid)
        want = ref_range_norm(np.nan_to_num(bad[0], nan=0.0, posinf=0.0, neginf=0.0), plo, phi)
        for c in (0, 1, 3, 4):
            assert_close(got[c], want[c])
        assert got[2, 1, 1] == 0 and got[2, 2, 5] == 255 and got[2, 6, 3] == 0

    @pytest.mark.parametrize("norm", ["map", "robust", "fixed"])
    def test_all_nan_map(self, norm: str) -> None:
        clean, _ = _bad_blob(43)
        bad = clean.copy()
        bad[0, 3] = np.nan
        options: dict[str, object] = {"value_range": (-1.0, 1.0)} if norm == "fixed" else {}
        grid = make_grid(bad, norm, **options)
        assert grid.finite is False
        got = tiles(grid)
        assert (got[3] == 0).all()
        if norm != "robust":  # robust percentiles move a little when 64 values go
            want = tiles(make_grid(clean, norm, **options))
            for c in (0, 1, 2, 4):
                np.testing.assert_array_equal(got[c], want[c])
        assert np.isfinite(grid.lo).all() and np.isfinite(grid.hi).all()

    def test_all_nan_map_layer_mode(self) -> None:
        clean = rng_for(44).uniform(5.0, 10.0, (1, 3, 4, 4)).astype(np.float32)
        bad = clean.copy()
        bad[0, 1] = np.nan
        want = tiles(make_grid(clean, "layer"))
        grid = make_grid(bad, "layer")
        got = tiles(grid)
        assert (got[1] == 0).all()
        np.testing.assert_array_equal(got[[0, 2]], want[[0, 2]])

    def test_nan_in_vector_output_does_not_spread(self) -> None:
        got = tiles(make_grid(np.array([[5.0, 6.0, 7.0, np.nan]], np.float32), "map"))[:, 0, 0]
        np.testing.assert_array_equal(got, [0, 128, 255, 0])

    def test_everything_nan(self) -> None:
        blob = np.full((1, 3, 4, 4), np.nan, np.float32)
        for norm in ("map", "layer", "robust"):
            grid = make_grid(blob, norm)
            assert grid.finite is False
            assert (grid.image == 0).all()

    def test_inf_only_map(self) -> None:
        clean, _ = _bad_blob(45)
        bad = clean.copy()
        bad[0, 1] = np.inf
        grid = make_grid(bad, "map")
        assert grid.finite is False
        want = tiles(make_grid(clean, "map"))
        got = tiles(grid)
        for c in (0, 2, 3, 4):
            np.testing.assert_array_equal(got[c], want[c])

    def test_non_finite_does_not_warn(self) -> None:
        blob = np.ones((1, 2, 3, 3), np.float32)
        blob[0, 0, 0, 0] = np.inf
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            grid = lm.GridOptions("map").builder().build(blob)
        assert tiles(grid)[0, 0, 0] == 255

    def test_finite_is_true_for_clean_blobs(self) -> None:
        clean, _ = _bad_blob(46)
        for norm in ("map", "layer", "robust"):
            assert make_grid(clean, norm).finite is True


# ---------------------------------------------------------------- tiling
class TestTiling:
    @pytest.mark.parametrize(
        ("shape", "pad"),
        [((1, 64, 14, 14), 1), ((1, 10, 7, 9), 2), ((1, 5, 3, 3), 0), ((1, 1, 6, 6), 1), ((1, 37, 1, 1), 1)],
    )
    def test_grid_geometry_and_content(self, shape: tuple[int, ...], pad: int) -> None:
        blob = rng_for(50).standard_normal(shape).astype(np.float32)
        grid = lm.GridOptions("layer", pad=pad).builder().build(blob)
        lay = grid.layout
        c, h, w = shape[1:]
        assert (lay.count, lay.map_h, lay.map_w, lay.pad, lay.step) == (c, h, w, pad, 1)
        assert grid.image.dtype == np.uint8
        assert grid.image.shape == lay.shape == (lay.rows * (h + pad), lay.cols * (w + pad))
        assert lay.rows * lay.cols >= c
        assert (lay.rows - 1) * lay.cols < c
        assert lay.order == tuple(range(c))
        # every tile holds its normalized map
        assert_close(tiles(grid), ref_layer_norm(blob[0]))
        # everything outside the tiles is 0
        mask = tile_mask(lay)
        assert mask.sum() == c * h * w
        assert (grid.image[~mask] == 0).all()

    def test_tiles_in_row_major_channel_order(self) -> None:
        blob = np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1) * np.ones((1, 1, 2, 2), np.float32)
        grid = lm.GridOptions("fixed", value_range=(0, 255), pad=1).builder().build(blob)
        lay = grid.layout
        assert (lay.rows, lay.cols) == (3, 2)
        for ch in range(6):
            x, y, w, h = lay.tile_rect(ch)
            assert (x, y) == ((ch % 2) * 3, (ch // 2) * 3)
            assert (w, h) == (2, 2)
            assert (grid.image[y : y + h, x : x + w] == ch).all()

    def test_tile_at_and_tile_rect_round_trip(self) -> None:
        blob = rng_for(51).standard_normal((1, 23, 5, 7)).astype(np.float32)
        lay = lm.GridOptions("map", pad=2).builder().build(blob).layout
        for ch in range(23):
            x, y, w, h = lay.tile_rect(ch)
            assert (w, h) == (7, 5)
            for px, py in [(x, y), (x + w - 1, y), (x, y + h - 1), (x + w - 1, y + h - 1), (x + w / 2, y + h / 2)]:
                assert lay.tile_at(px, py) == ch
            # the padding right of and below the tile
            assert lay.tile_at(x + w, y) is None
            assert lay.tile_at(x + w + 1, y) is None
            assert lay.tile_at(x, y + h) is None
            assert lay.tile_at(x + w, y + h) is None

    def test_tile_at_agrees_with_the_pixel_mask(self) -> None:
        blob = rng_for(52).standard_normal((1, 7, 3, 4)).astype(np.float32)
        lay = lm.GridOptions("map", pad=1).builder().build(blob).layout
        mask = tile_mask(lay)
        hits = np.zeros(lay.shape, bool)
        for y in range(lay.shape[0]):
            for x in range(lay.shape[1]):
                ch = lay.tile_at(x, y)
                if ch is not None:
                    hits[y, x] = True
                    rx, ry, w, h = lay.tile_rect(ch)
                    assert rx <= x < rx + w and ry <= y < ry + h
        np.testing.assert_array_equal(hits, mask)

    def test_tile_at_outside(self) -> None:
        lay = make_grid(np.zeros((1, 5, 4, 4), np.float32), "map").layout  # 2 x 3 grid, one empty tile
        height, width = lay.shape
        assert lay.tile_at(-1, 0) is None
        assert lay.tile_at(0, -0.5) is None
        assert lay.tile_at(width + 3, 0) is None
        assert lay.tile_at(0, height + 3) is None
        x, y, _, _ = lay.tile_rect(4)
        assert lay.tile_at(x + lay.map_w + lay.pad, y) is None  # the empty sixth tile

    def test_tile_rect_unknown_channel(self) -> None:
        lay = make_grid(np.zeros((1, 4, 3, 3), np.float32), "map").layout
        with pytest.raises(ValueError):
            lay.tile_rect(4)

    def test_grid_shape_properties(self) -> None:
        for count in range(1, 600):
            for mh, mw in ((1, 1), (7, 7), (56, 56), (3, 40), (40, 3)):
                rows, cols = lm.grid_shape(count, mh, mw, 1)
                assert rows * cols >= count
                assert (rows - 1) * cols < count
                assert 1 <= cols <= count

    def test_grid_shape_near_square_for_square_maps(self) -> None:
        for count in range(1, 2049):
            rows, cols = lm.grid_shape(count, 14, 14, 1)
            assert abs(rows - cols) <= 1, (count, rows, cols)
        assert lm.grid_shape(64, 56, 56, 1) == (8, 8)
        assert lm.grid_shape(2048, 7, 7, 1) in ((45, 46), (46, 45))

    def test_grid_shape_respects_aspect(self) -> None:
        rows, cols = lm.grid_shape(64, 10, 10, 0, aspect=4.0)
        assert (rows, cols) == (4, 16)
        # wide maps get fewer columns so the grid stays near square in pixels
        rows, cols = lm.grid_shape(64, 1, 30, 0)
        assert rows > cols
        width, height = cols * 30, rows * 1
        assert 0.25 <= width / height <= 4.0

    def test_grid_shape_needs_a_map(self) -> None:
        with pytest.raises(UsageError):
            lm.grid_shape(0, 4, 4, 1)

    def test_batch_and_layout_through_make_grid(self) -> None:
        blob = rng_for(53).standard_normal((2, 6, 6, 3)).astype(np.float32)
        grid = lm.GridOptions("map", batch=1, layout="nhwc", pad=0).builder().build(blob)
        assert grid.layout.count == 3
        assert_close(tiles(grid), ref_map_norm(blob[1].transpose(2, 0, 1)))


# ---------------------------------------------------------------- order
class TestOrder:
    def test_mean_order(self) -> None:
        rng = rng_for(60)
        shifts = np.array([0.0, 3.0, -2.0, 5.0, 1.0, 4.0, -1.0], np.float32)
        blob = (rng.standard_normal((1, 7, 6, 6)) * 0.1).astype(np.float32) + shifts[None, :, None, None]
        blob[0, 1] = (blob[0, 1] - 3.0) * 3.0 + 3.0  # a different range, the same mean
        grid = lm.GridOptions("map", order="mean").builder().build(blob)
        lay = grid.layout
        means = blob[0].mean(axis=(1, 2))
        assert lay.order == tuple(int(i) for i in np.argsort(-means))
        top = int(np.argmax(means))
        assert top == 3
        assert lay.tile_rect(top)[:2] == (0, 0)
        assert lay.tile_at(0, 0) == top
        # tile 0 shows the top channel's pixels
        x, y, w, h = lay.tile_rect(top)
        assert_close(grid.image[y : y + h, x : x + w], ref_map_norm(blob[0, top : top + 1])[0])
        # every channel is where tile_rect says, with its own data
        assert_close(tiles(grid), ref_map_norm(blob[0]))
        # lo / hi in channel order, not tile order
        np.testing.assert_allclose(grid.lo, blob[0].min(axis=(1, 2)))
        np.testing.assert_allclose(grid.hi, blob[0].max(axis=(1, 2)))

    def test_mean_order_with_robust_and_bad_maps(self) -> None:
        clean, bad = _bad_blob(61)
        grid = make_grid(bad, "robust", order="mean")
        assert sorted(grid.layout.order) == list(range(5))
        assert grid.layout.order[-1] == 2  # a NaN mean sorts last
        assert grid.finite is False
        clean_grid = make_grid(clean, "map", order="mean")
        assert sorted(clean_grid.layout.order) == list(range(5))

    def test_index_order_is_identity(self) -> None:
        grid = make_grid(rng_for(62).standard_normal((1, 9, 3, 3)), "map", order="index")
        assert grid.layout.order == tuple(range(9))


# ---------------------------------------------------------------- downscaling
class TestMaxSize:
    def test_big_layer_is_block_mean_downscaled(self) -> None:
        blob = rng_for(70).standard_normal((1, 64, 224, 224)).astype(np.float32)
        grid = lm.GridOptions("map", max_size=512).builder().build(blob)
        lay = grid.layout
        assert lay.step > 1
        assert isinstance(lay.step, int)
        assert max(grid.image.shape) <= 512
        assert grid.image.shape == lay.shape
        assert (lay.map_h, lay.map_w) == (224 // lay.step, 224 // lay.step)
        # the smallest step that fits: one step less would not
        prev = lay.step - 1
        ph, pw = 224 // prev, 224 // prev
        rows, cols = lm.grid_shape(64, ph, pw, lay.pad)
        assert max(rows * (ph + lay.pad), cols * (pw + lay.pad)) > 512
        # block means, then per-map min-max
        s = lay.step
        h2, w2 = lay.map_h, lay.map_w
        small = blob[0, :, : h2 * s, : w2 * s].astype(np.float64).reshape(64, h2, s, w2, s).mean(axis=(2, 4))
        assert_close(tiles(grid), ref_map_norm(small))

    def test_uneven_size_is_cropped(self) -> None:
        blob = rng_for(71).standard_normal((1, 4, 23, 17)).astype(np.float32)
        grid = lm.GridOptions("layer", max_size=30, pad=0).builder().build(blob)
        lay = grid.layout
        s = lay.step
        assert s >= 2 and max(grid.image.shape) <= 30
        h2, w2 = 23 // s, 17 // s
        assert (lay.map_h, lay.map_w) == (h2, w2)
        small = blob[0, :, : h2 * s, : w2 * s].astype(np.float64).reshape(4, h2, s, w2, s).mean(axis=(2, 4))
        assert_close(tiles(grid), ref_layer_norm(small))

    def test_small_layer_is_not_downscaled(self) -> None:
        grid = make_grid(np.zeros((1, 16, 28, 28), np.float32), "map", max_size=512)
        assert grid.layout.step == 1
        assert (grid.layout.map_h, grid.layout.map_w) == (28, 28)

    def test_long_sequence_maps_are_downscaled(self) -> None:
        grid = make_grid(np.zeros((1, 4, 5000), np.float32), "map", max_size=512)
        assert max(grid.image.shape) <= 512


# ---------------------------------------------------------------- buffers
class TestBuffers:
    def test_same_shape_reuses_the_image(self) -> None:
        rng = rng_for(80)
        builder = lm.GridBuilder("map")
        b1 = rng.standard_normal((1, 10, 9, 9)).astype(np.float32)
        b2 = (rng.standard_normal((1, 10, 9, 9)) * 5 + 2).astype(np.float32)
        g1 = builder.build(b1)
        first = g1.image.copy()
        assert_close(tiles(g1), ref_map_norm(b1[0]))
        g2 = builder.build(b2)
        assert g2.image is g1.image
        assert np.shares_memory(g1.image, g2.image)
        assert_close(tiles(g2), ref_map_norm(b2[0]))
        assert not np.array_equal(g2.image, first)
        assert (g2.image[~tile_mask(g2.layout)] == 0).all()

    def test_shape_change_reallocates_and_stays_correct(self) -> None:
        rng = rng_for(81)
        builder = lm.GridBuilder("layer")
        g1 = builder.build(rng.standard_normal((1, 10, 9, 9)).astype(np.float32))
        shape1 = g1.image.shape
        b2 = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
        g2 = builder.build(b2)
        assert g2.image.shape != shape1
        assert_close(tiles(g2), ref_layer_norm(b2[0]))
        assert (g2.image[~tile_mask(g2.layout)] == 0).all()

    def test_empty_tile_is_cleared_when_the_count_changes(self) -> None:
        # 6 maps and 5 maps of 4 x 4 both make a 3 x 2 grid: the same image buffer
        builder = lm.GridBuilder("map")
        six = rng_for(82).standard_normal((1, 6, 4, 4)).astype(np.float32)
        g6 = builder.build(six)
        five = rng_for(83).standard_normal((1, 5, 4, 4)).astype(np.float32)
        g5 = builder.build(five)
        assert g5.image is g6.image
        assert (g5.layout.rows, g5.layout.cols) == (g6.layout.rows, g6.layout.cols)
        assert (g5.image[~tile_mask(g5.layout)] == 0).all()
        assert_close(tiles(g5), ref_map_norm(five[0]))

    def test_stale_values_are_cleared(self) -> None:
        # a bright frame, then one with NaN in a map: nothing of the first must remain
        builder = lm.GridBuilder("map", pad=2)
        bright = np.ones((1, 5, 4, 4), np.float32)
        bright[0, :, 0, 0] = 0.0
        builder.build(bright)
        dark = np.full((1, 5, 4, 4), np.nan, np.float32)
        grid = builder.build(dark)
        assert (grid.image == 0).all()


# ---------------------------------------------------------------- colormaps
class TestColorize:
    def test_shape_dtype_and_lut(self) -> None:
        blob = rng_for(90).standard_normal((1, 7, 5, 6)).astype(np.float32)
        grid = lm.GridOptions("map", pad=2).builder().build(blob)
        for name in lm.COLORMAPS:
            rgb = lm.colorize(grid.image, name, grid.layout)
            assert rgb.shape == (*grid.image.shape, 3)
            assert rgb.dtype == np.uint8
            lut = lm.colormap_lut(name)
            assert lut.shape == (256, 3) and lut.dtype == np.uint8
            mask = tile_mask(grid.layout)
            np.testing.assert_array_equal(rgb[mask], lut[grid.image[mask]])
            # padding, including the empty eighth tile, is PAD_RGB
            assert (rgb[~mask] == np.array(lm.PAD_RGB, np.uint8)).all()

    def test_without_layout_every_pixel_is_mapped(self) -> None:
        image = np.arange(256, dtype=np.uint8).reshape(16, 16)
        for name in ("viridis", "jet", "gray"):
            np.testing.assert_array_equal(lm.colorize(image, name), lm.colormap_lut(name)[image])

    def test_gray_is_identity(self) -> None:
        lut = lm.colormap_lut("gray")
        np.testing.assert_array_equal(lut, np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))
        image = rng_for(91).integers(0, 256, (9, 11)).astype(np.uint8)
        rgb = lm.colorize(image, "gray")
        for k in range(3):
            np.testing.assert_array_equal(rgb[..., k], image)

    def test_viridis_is_rgb(self) -> None:
        lut = lm.colormap_lut("viridis")
        r0, g0, b0 = (int(v) for v in lut[0])
        r1, g1, b1 = (int(v) for v in lut[255])
        assert r0 + g0 + b0 < 200  # dark purple
        assert b0 > r0 > g0
        assert r1 > 200 and g1 > 200 and b1 < 100  # bright yellow
        lum = lut.astype(np.float64) @ [0.299, 0.587, 0.114]
        assert (np.diff(lum) >= -1).all()  # (nearly) monotonic brightness

    def test_unknown_colormap(self) -> None:
        with pytest.raises(UsageError, match="colormap"):
            lm.colormap_lut("rainbow2")
        with pytest.raises(UsageError):
            lm.colorize(np.zeros((2, 2), np.uint8), "nope")

    def test_pad_zero(self) -> None:
        grid = make_grid(rng_for(92).standard_normal((1, 4, 3, 3)), "map", pad=0)
        rgb = lm.colorize(grid.image, "viridis", grid.layout)
        np.testing.assert_array_equal(rgb, lm.colormap_lut("viridis")[grid.image])


# ---------------------------------------------------------------- options
class TestOptions:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"norm": "minmax"},
            {"norm": "fixed"},
            {"norm": "fixed", "value_range": (1.0, 1.0)},
            {"norm": "fixed", "value_range": (2.0, 1.0)},
            {"norm": "fixed", "value_range": (0.0, math.inf)},
            {"norm": "fixed", "value_range": (math.nan, 1.0)},
            {"norm": "robust", "percentiles": (50.0, 50.0)},
            {"norm": "robust", "percentiles": (90.0, 10.0)},
            {"norm": "robust", "percentiles": (-1.0, 99.0)},
            {"norm": "robust", "percentiles": (1.0, 101.0)},
            {"norm": "robust", "percentiles": (math.nan, 99.0)},
            {"pad": -1},
            {"order": "random"},
            {"max_size": 0},
            {"max_size": -5},
            {"aspect": 0.0},
            {"aspect": math.nan},
        ],
    )
    def test_invalid_options(self, kwargs: dict[str, object]) -> None:
        norm = str(kwargs.pop("norm", "map"))
        with pytest.raises(UsageError):
            lm.GridBuilder(norm, **kwargs)  # type: ignore[arg-type]

    def test_make_grid_validates_too(self) -> None:
        with pytest.raises(UsageError):
            make_grid(np.zeros((1, 2, 3, 3), np.float32), "fixed")

    def test_valid_options(self) -> None:
        builder = lm.GridBuilder("fixed", value_range=(-1, 1), pad=0, order="mean", max_size=1, aspect=2.0)
        grid = builder.build(np.zeros((1, 3, 4, 4), np.float32))
        assert grid.layout.map_h == grid.layout.map_w == 1  # max_size=1 shrinks maps as far as they go
        mask = tile_mask(grid.layout)
        assert (grid.image[mask] == 128).all()
        assert (grid.image[~mask] == 0).all()

    def test_registries(self) -> None:
        assert set(lm.NORMS) == {"map", "layer", "robust", "fixed"}
        assert "viridis" in lm.COLORMAPS and "gray" in lm.COLORMAPS
        assert lm.MAP_LAYOUTS == ("auto", "nchw", "nhwc")
        assert len(lm.PAD_RGB) == 3


# ---------------------------------------------------------------- known precision bug
def test_small_range_far_from_zero() -> None:
    blob = np.array([[[300000.0, 300001.0, 300002.0]]], np.float32)  # one 1 x 3 map
    np.testing.assert_array_equal(lm.GridOptions("map", pad=0).builder().build(blob).image, [[0, 128, 255]])
