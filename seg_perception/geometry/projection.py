"""Segmentation labels -> bird's-eye occupancy grid over flat ground (z = 0 in the grid frame).

``GroundProjector`` precomputes every pixel <-> cell relation for one (intrinsics, pose,
grid, label size); ``project`` then costs a few vectorized passes over the label image.
Free evidence comes from drivable pixels, occupied evidence from obstacle ground contacts;
occupied wins, the rest is unknown. The model, its cases and its limits: docs/occupancy.md
and docs/geometry.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from seg_perception.errors import ConfigError, GeometryError, ImageError
from seg_perception.geometry.camera import CameraIntrinsics, CameraPose
from seg_perception.geometry.classes import apply_lut, class_lut
from seg_perception.geometry.grid_spec import OCCUPIED, GridSpec
from seg_perception.geometry.ground import cells_of, ground_hits, rays_grid, rotate, sample_segments

_DRIVABLE, _OBSTACLE = 1, 2
# Cap on samples along one contact segment (a far pixel's footprint), at resolution / 3 spacing.
_MAX_SEGMENT_SAMPLES = 64
# Rows checked below a contact candidate along the projected vertical (see _build_vertical_checks).
_VERTICAL_ROWS = 6
# Rows of obstacle in the neighbouring column that mark a slightly slanted side silhouette.
_SIDE_ROWS = 4
# Pixels per block while building the lookup: bounds the build's peak memory.
_BUILD_CHUNK = 1 << 15


@dataclass(frozen=True)
class OccupancyResult:
    """Output of one ``GroundProjector.project`` call.

    Attributes:
        grid: (grid.height, grid.width) int8, row = y index, col = x index; 0 free,
            100 occupied, -1 unknown. ``grid.ravel()`` is nav_msgs/OccupancyGrid ``data``.
        contacts: (N, 2) float64 obstacle ground-contact points (x, y) in the grid frame,
            metres: one per contact pixel plus points every ``resolution / 4`` along the
            links between neighbouring contacts. Used for the obstacle scan.
    """

    grid: np.ndarray
    contacts: np.ndarray


class GroundProjector:
    """Precomputed pixel <-> cell lookup for one (intrinsics, pose, grid, label size); per-frame projection.

    Args:
        intrinsics: camera intrinsics (any size; scaled to ``label_size`` when that differs).
        pose: camera body pose in the grid frame (REP-103, positive pitch looks down).
        grid: grid geometry and ``max_range``.
        drivable_classes: class ids that are free ground.
        obstacle_classes: class ids that block.
        label_size: (width, height) of the label images; default the intrinsics' size.
        link_distance: neighbouring-column contacts at most this far apart on the ground
            (metres) are joined into one occupied edge; default ``max(1.0, 5 * resolution)``.
        link_rows: neighbouring-column contacts are joined only when their rows differ by
            at most this many pixels.

    Raises:
        GeometryError: camera on or below the ground, image "down" not pointing at the
            ground (rolled/pitched too far for column-wise contacts), or no pixel sees
            ground inside the grid within ``max_range`` (e.g. a camera looking at the sky).
        ConfigError: bad class ids, or a class both drivable and obstacle.
    """

    def __init__(
        self,
        intrinsics: CameraIntrinsics,
        pose: CameraPose,
        grid: GridSpec,
        drivable_classes: Iterable[int],
        obstacle_classes: Iterable[int],
        label_size: tuple[int, int] | None = None,
        link_distance: float | None = None,
        link_rows: int = 4,
    ) -> None:
        if not isinstance(intrinsics, CameraIntrinsics):
            raise GeometryError(f"intrinsics must be CameraIntrinsics, got {type(intrinsics).__name__}")
        if not isinstance(pose, CameraPose):
            raise GeometryError(f"pose must be CameraPose, got {type(pose).__name__}")
        if not isinstance(grid, GridSpec):
            raise ConfigError(f"grid must be GridSpec, got {type(grid).__name__}")
        if label_size is not None:
            w, h = (int(s) for s in label_size)
            if w < 2 or h < 2:
                raise GeometryError(f"label size must be at least 2x2, got {w}x{h}")
            if (w, h) != (intrinsics.width, intrinsics.height):
                intrinsics = intrinsics.scaled(w, h)
        if intrinsics.width < 2 or intrinsics.height < 2:
            raise GeometryError(f"label size must be at least 2x2, got {intrinsics.width}x{intrinsics.height}")
        self.intrinsics = intrinsics
        self.pose = pose
        self.grid = grid
        self.drivable_classes = frozenset(int(c) for c in drivable_classes)
        self.obstacle_classes = frozenset(int(c) for c in obstacle_classes)
        self._drv_lut = class_lut(self.drivable_classes, "drivable_classes")
        self._obs_lut = class_lut(self.obstacle_classes, "obstacle_classes")
        both = self.drivable_classes & self.obstacle_classes
        if both:
            raise ConfigError(f"classes {sorted(both)} are both drivable and obstacle")
        self._code_lut = (self._drv_lut * _DRIVABLE + self._obs_lut * _OBSTACLE).astype(np.uint8)
        self.link_distance = float(max(1.0, 5 * grid.resolution) if link_distance is None else link_distance)
        if not np.isfinite(self.link_distance) or self.link_distance < 0:
            raise ConfigError(f"link_distance must be >= 0 metres, got {link_distance}")
        self.link_rows = int(link_rows)
        self._build()

    # ------------------------------------------------------------------ lookup build
    @property
    def label_size(self) -> tuple[int, int]:
        """(width, height) of the label images this lookup is for."""
        return self.intrinsics.width, self.intrinsics.height

    def _build(self) -> None:
        intr, pose, grid = self.intrinsics, self.pose, self.grid
        w, h = intr.width, intr.height
        origin = pose.position
        if not origin[2] > 0:
            raise GeometryError(f"camera must be above the ground (z > 0), got z = {origin[2]} m")
        # Column-wise contacts need image "down" to point at the ground.
        if pose.rotation_optical[2, 1] > -0.1:
            raise GeometryError(
                f"camera rpy {pose.rpy} turns the image so that its rows do not run down towards the ground "
                "(|roll| or pitch too large for column-wise ground contacts)"
            )
        n_cells = grid.n_cells
        self._n_cells = n_cells
        self._origin = origin

        # Pixel centres: free evidence (a).
        vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
        rays, ok = rays_grid(intr, pose, uu, vv)
        px, py, pok = ground_hits(origin, rays, ok, grid.max_range)
        cell = np.where(pok, grid.cell_index(px, py), -1)
        rows_hit = np.flatnonzero((cell >= 0).any(axis=1))
        if rows_hit.size == 0:
            raise GeometryError(
                f"no pixel sees the ground inside the grid within max_range {grid.max_range} m "
                f"(camera at {pose.xyz} m, rpy {pose.rpy} rad looks at the sky or away from the grid)"
            )
        self._free_r0 = int(rows_hit[0])
        # Pixels that hit no cell write to a scratch slot at index n_cells.
        self._fwd_cell = np.where(cell >= 0, cell, n_cells)[self._free_r0 :].astype(np.intp).ravel()
        self.pixel_cell = cell  # (h, w) int64 cell hit by each pixel centre, -1 where none

        # Contact of an obstacle pixel (u, v) above a non-obstacle one: the true ground contact lies
        # between B, the ground seen by the pixel below (u, v + 1), and C, where the obstacle pixel's
        # own ray would meet the ground (behind the obstacle's face). A, the hit of the boundary ray
        # (u, v + 0.5), is the estimate; the whole segment B -> C is marked occupied.
        rays_a, ok_a = rays_grid(intr, pose, uu, vv + 0.5)
        del uu, vv  # temporaries are dropped as soon as they are spent: they set the build's peak
        ax, ay, aok = ground_hits(origin, rays_a, ok_a, grid.max_range)
        del rays_a, ok_a
        rows_a = np.flatnonzero(aok.any(axis=1))
        self._contact_r0 = int(rows_a[0]) if rows_a.size else h
        self._build_vertical_checks(rays, ok)
        del rays, ok
        bx, by = ax.copy(), ay.copy()
        below = pok[1:] & aok[:-1]
        bx[:-1] = np.where(below, px[1:], ax[:-1])
        by[:-1] = np.where(below, py[1:], ay[:-1])
        # Where the obstacle pixel's ray misses the ground in range, mirror B about A instead.
        c_x = np.where(pok, px, 2 * ax - bx)
        c_y = np.where(pok, py, 2 * ay - by)
        self._contact_ok = aok[self._contact_r0 :].copy()
        self._ax, self._ay = ax.ravel(), ay.ravel()
        self._ab_cells = self._segment_cells(bx, by, c_x, c_y, aok)
        del bx, by, c_x, c_y

        # Cell centres -> image: free evidence (b).
        xs, ys = grid.cell_centers()
        cx, cy = np.meshgrid(xs, ys)  # (rows, cols)
        in_range = np.hypot(cx - origin[0], cy - origin[1]) <= grid.max_range
        cand = np.flatnonzero(in_range.ravel())
        pts = np.stack([cx.ravel()[cand], cy.ravel()[cand], np.zeros(cand.size)], axis=1)
        p_opt = rotate(pose.rotation_optical.T, pts - origin)
        front = p_opt[:, 2] > 1e-6
        cand, p_opt = cand[front], p_opt[front]
        uv = intr.project(p_opt)
        # The image's pixel area: a border pixel's label covers out to the image edge.
        inside = (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
        if intr.has_distortion:
            # Reject projections that the distortion polynomial folded back into the image.
            xn, yn = intr.undistort_pixels(uv[:, 0], uv[:, 1])
            inside &= np.hypot(xn - p_opt[:, 0] / p_opt[:, 2], yn - p_opt[:, 1] / p_opt[:, 2]) < 1e-3
        cand, uv = cand[inside], uv[inside]
        u0 = np.clip(np.floor(uv[:, 0]).astype(np.intp), 0, w - 2)
        v0 = np.clip(np.floor(uv[:, 1]).astype(np.intp), 0, h - 2)

        # Only rows from the first one any lookup touches are classified per frame.
        band = min(self._free_r0, self._contact_r0, int(v0.min()) if v0.size else h)
        self._band = band
        self._free_off = (self._free_r0 - band) * w
        self._contact_off = (self._contact_r0 - band) * w
        q00 = (v0 - band) * w + u0
        self._inv_cell = cand.astype(np.intp)
        self._q = (q00, q00 + 1, q00 + w, q00 + w + 1)

        observable = np.zeros(n_cells, dtype=bool)
        observable[self._inv_cell] = True
        observable[cell[cell >= 0]] = True
        self.observable = observable.reshape(grid.shape)
        # Horizontal distance from the camera to the nearest ground it sees (its blind zone).
        self.min_visible_range = float(np.min(np.hypot(px[pok] - origin[0], py[pok] - origin[1])))

    def _build_vertical_checks(self, rays: np.ndarray, ok: np.ndarray) -> None:
        """Samples below each contact-band pixel along the image of a 3-D vertical line through it.

        A candidate contact whose own class continues down this line is a staircase step of a
        slanted side silhouette, not a contact (docs/geometry.md, "Vertical check").
        """
        r0 = self._contact_r0
        band = rays[r0:].reshape(-1, 3)
        band_ok = ok[r0:].ravel()
        n = band_ok.size
        self._vert_idx = np.zeros((_VERTICAL_ROWS, n), dtype=np.int32)
        self._vert_use = np.zeros((_VERTICAL_ROWS, n), dtype=bool)
        self._side_idx = np.zeros((_SIDE_ROWS, n), dtype=np.int32)
        self._side_use = np.zeros(n, dtype=bool)
        # Row blocks bound the build's peak memory (the node's peak RSS): same result as one pass.
        for lo in range(0, n, _BUILD_CHUNK):
            hi = min(n, lo + _BUILD_CHUNK)
            slope, k_pix = self._vertical_slope(band[lo:hi], band_ok[lo:hi])
            self._vertical_block(lo, hi, slope, k_pix)

    def _vertical_slope(self, rays: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image slope (du per row down, float32) of the vertical through each ray's pixel, and rows to check (int32).

        ``rays`` is (n, 3) grid-frame ray directions, ``ok`` (n,) bool.
        """
        intr, rot = self.intrinsics, self.pose.rotation_optical
        # Optical-frame direction of each ray, and of the same ray nudged straight down.
        d1 = rotate(rot.T, rays)
        d2 = d1 - 1e-3 * rot[2]  # rot[2] = grid "up" in optical coordinates; scale ~ ray length (z_opt = 1)
        uv1 = intr.project(d1)
        uv2 = intr.project(d2)
        dv = uv2[:, 1] - uv1[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(ok & (dv > 1e-12), (uv2[:, 0] - uv1[:, 0]) / dv, 0.0)
        slope = np.where(np.isfinite(slope), slope, 0.0).astype(np.float32)
        # Enough rows for the vertical to drift half a pixel sideways; one row if it cannot within the cap.
        drift = np.abs(slope)
        k_pix = np.where(drift * _VERTICAL_ROWS >= 0.5, np.ceil(0.5 / np.maximum(drift, 1e-6)) + 1, 1).astype(np.int32)
        return slope, k_pix

    def _vertical_block(self, lo: int, hi: int, slope: np.ndarray, k_pix: np.ndarray) -> None:
        """Vertical and side checks of band pixels ``lo:hi`` (flat band indices), written in place."""
        w, h, r0 = self.intrinsics.width, self.intrinsics.height, self._contact_r0
        flat = np.arange(lo, hi, dtype=np.int32)
        v = flat // w + r0
        u = flat % w
        ks = np.arange(1, _VERTICAL_ROWS + 1, dtype=np.int32)[:, None]
        uk = np.rint(u + ks * slope).astype(np.int32)
        vk = v + ks
        use = (ks <= k_pix) & (vk < h) & (uk >= 0) & (uk < w)
        self._vert_idx[:, lo:hi] = np.where(use, (vk - r0) * w + uk, 0)
        self._vert_use[:, lo:hi] = use
        # A slight tilt (|slope| * rows < 0.5 px) cannot be followed pixel by pixel; there a step of
        # the staircase shows as: the column beside, on the side the vertical drifts to, still holds
        # the same class for the next rows.
        side = np.sign(slope).astype(np.int32)
        us = u + side
        ks = ks[:_SIDE_ROWS]
        vk = v + ks
        suse = (side != 0) & (k_pix == 1) & (vk < h) & (us >= 0) & (us < w)
        self._side_idx[:, lo:hi] = np.where(suse, (vk - r0) * w + us, 0)
        self._side_use[lo:hi] = suse.all(axis=0)

    def _segment_cells(
        self, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray, aok: np.ndarray
    ) -> np.ndarray:
        """Cells of each contact-band pixel's segment (ax, ay) -> (bx, by), sampled every <= resolution / 3.

        Returns (n_band_pixels, m) int32; rows of pixels without a valid contact hold
        n_cells (the scratch slot).
        """
        grid = self.grid
        r0 = self._contact_r0
        a = np.stack([ax[r0:].ravel(), ay[r0:].ravel()], axis=1)
        b = np.stack([bx[r0:].ravel(), by[r0:].ravel()], axis=1)
        ok = aok[r0:].ravel()
        if a.shape[0] == 0:
            return np.zeros((0, 1), dtype=np.intp)
        step = grid.resolution / 3
        length = np.where(ok, np.hypot(*(b - a).T), 0.0)
        m = int(min(np.ceil(length.max() / step), _MAX_SEGMENT_SAMPLES)) + 1
        t = np.linspace(0.0, 1.0, m)
        blocks = []
        # Row blocks bound the build's peak memory (the node's peak RSS): same result as one pass.
        for lo in range(0, a.shape[0], _BUILD_CHUNK):
            sl = slice(lo, lo + _BUILD_CHUNK)
            blocks.append(self._segment_block(a[sl], b[sl], ok[sl], t))
        k = max(c.shape[1] for c in blocks)
        out = np.empty((a.shape[0], k), dtype=np.int32)
        lo = 0
        for c in blocks:
            out[lo : lo + c.shape[0], : c.shape[1]] = c
            out[lo : lo + c.shape[0], c.shape[1] :] = c[:, :1]  # pad with the first cell: harmless
            lo += c.shape[0]
        return out

    def _segment_block(self, a: np.ndarray, b: np.ndarray, ok: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Distinct cells of segments a -> b sampled at fractions ``t``, front-packed, (n, k) int32."""
        grid, n_cells = self.grid, self._n_cells
        m = t.size
        cells = np.empty((a.shape[0], m), dtype=np.int32)
        for j, tj in enumerate(t):  # m is small; one vectorized pass per sample position
            p = a + tj * (b - a)
            cells[:, j] = cells_of(grid, p[:, 0], p[:, 1], n_cells)
        cells[~ok] = n_cells
        # Consecutive samples mostly share a cell: move each row's distinct cells to the front
        # (stable sort on "repeat" flags) and drop the columns that only hold repeats.
        repeat = np.zeros(cells.shape, dtype=np.int8)
        repeat[:, 1:] = cells[:, 1:] == cells[:, :-1]
        order = np.argsort(repeat, axis=1, kind="stable")
        cells = np.take_along_axis(cells, order, axis=1)
        del order
        n_distinct = m - repeat.sum(axis=1)
        k = int(n_distinct.max())
        cells = cells[:, :k]
        # Pad a row's tail (repeats) with its first cell: marking it twice is harmless.
        tail = np.arange(k)[None, :] >= n_distinct[:, None]
        return np.where(tail, cells[:, :1], cells).astype(np.int32)

    # ------------------------------------------------------------------ per frame
    def _check_labels(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ImageError(f"labels must be a 2-D (H, W) array of class ids, got shape {labels.shape}")
        if labels.shape != (self.intrinsics.height, self.intrinsics.width):
            raise GeometryError(
                f"labels are {labels.shape[1]}x{labels.shape[0]} but this lookup is for "
                f"{self.intrinsics.width}x{self.intrinsics.height}; build one for that size (OccupancyMapper does)"
            )
        if labels.dtype == np.uint8:
            return labels
        if not np.issubdtype(labels.dtype, np.integer):
            raise ImageError(f"labels must be integer class ids, got dtype {labels.dtype}")
        # Ids outside 0..255 cannot be drivable or obstacle classes: they say nothing.
        return np.where((labels >= 0) & (labels <= 255), labels, 255).astype(np.uint8)

    def project(self, labels: np.ndarray) -> OccupancyResult:
        """Occupancy grid of one frame.

        Args:
            labels: (H, W) class ids, uint8 preferred (other integer dtypes are converted),
                H x W = ``label_size`` (height, width).

        Returns:
            OccupancyResult with the (rows, cols) int8 grid and the contact points.

        Raises:
            ImageError: not a 2-D integer array. GeometryError: wrong size.
        """
        labels = self._check_labels(labels)
        n = self._n_cells
        code = apply_lut(self._code_lut, labels[self._band :])
        drv = (code == _DRIVABLE).ravel()
        obs = code == _OBSTACLE

        # Index n is a scratch slot for pixels and segments that hit no cell.
        free = np.zeros(n + 1, dtype=bool)
        free[self._fwd_cell[drv[self._free_off :]]] = True
        q00, q01, q10, q11 = self._q
        free[self._inv_cell[drv[q00] & drv[q01] & drv[q10] & drv[q11]]] = True
        # Mixed cells: a cell where any non-drivable pixel's ray also meets the ground is not free
        # (obstacle wins: occupied when a contact lands there, else unknown).
        mixed = np.zeros(n + 1, dtype=bool)
        mixed[self._fwd_cell[~drv[self._free_off :]]] = True
        free &= ~mixed

        occ = np.zeros(n + 1, dtype=bool)
        contacts = self._contacts(obs, labels, occ)
        grid = free[:n].view(np.int8) - np.int8(1)  # True -> 0 (FREE), False -> -1 (UNKNOWN)
        grid[occ[:n]] = OCCUPIED
        return OccupancyResult(grid=grid.reshape(self.grid.shape), contacts=contacts)

    def _contacts(self, obs: np.ndarray, labels: np.ndarray, occ: np.ndarray) -> np.ndarray:
        """Mark contact segments and links in ``occ`` (n_cells + 1 bool); return contact points (N, 2) for the scan.

        ``obs`` is the obstacle mask of the label rows from ``self._band`` down; ``labels`` the full label image.
        """
        w, h = self.intrinsics.width, self.intrinsics.height
        r0 = self._contact_r0
        if r0 >= h:
            return np.zeros((0, 2))
        o = obs[r0 - self._band :]
        run_end = np.empty_like(o)
        np.greater(o[:-1], o[1:], out=run_end[:-1])  # obstacle above non-obstacle
        run_end[-1] = o[-1]
        run_end &= self._contact_ok
        band_idx = np.flatnonzero(run_end)
        if band_idx.size == 0:
            return np.zeros((0, 2))
        # Staircase steps of a slanted side silhouette: the same class continues down the vertical.
        flat = labels[r0:].ravel()
        own = flat[band_idx]
        beside = ((flat[self._vert_idx[:, band_idx]] == own) & self._vert_use[:, band_idx]).any(axis=0)
        beside |= self._side_use[band_idx] & (flat[self._side_idx[:, band_idx]] == own).all(axis=0)
        band_idx = band_idx[~beside]
        if band_idx.size == 0:
            return np.zeros((0, 2))
        occ[self._ab_cells[band_idx]] = True
        idx = band_idx + r0 * w
        a = np.stack([self._ax[idx], self._ay[idx]], axis=1)

        # Join each contact to the nearest-row contacts of the next column (keys sorted column-major).
        u, v = idx % w, idx // w
        key = u * h + v
        order = np.argsort(key, kind="stable")
        ks = key[order]
        k = self.link_rows
        lo = np.searchsorted(ks, key + h - k, side="left")
        hi = np.searchsorted(ks, key + h + k, side="right") - 1
        src, dst = [], []
        for cand in (lo, hi):
            in_bounds = (cand >= 0) & (cand < ks.size)
            other = order[np.clip(cand, 0, ks.size - 1)]
            good = in_bounds & (u[other] == u + 1) & (np.abs(v[other] - v) <= k)
            src.append(np.flatnonzero(good))
            dst.append(other[good])
        src_i = np.concatenate(src)
        dst_i = np.concatenate(dst)
        d = a[dst_i] - a[src_i]
        keep = np.hypot(d[:, 0], d[:, 1]) <= self.link_distance
        links = sample_segments(a[src_i[keep]], a[dst_i[keep]], self.grid.resolution / 4)
        if links.shape[0]:
            occ[cells_of(self.grid, links[:, 0], links[:, 1], self._n_cells)] = True
            return np.concatenate([a, links])
        return a


__all__ = ["GroundProjector", "OccupancyResult"]
