"""Synthetic street scenes: a flat world ray-cast through a pinhole camera.

A ``StreetWorld`` is a ground plane (z = 0 in the grid frame, x forward, y left,
z up, metres) split into a road strip and sidewalks, plus primitives standing on
it: axis-aligned boxes (buildings, cars, fences, signs, bicyclists), vertical
cylinders (poles, trunks, pedestrians) and spheres (tree crowns). ``render`` casts
one ray per pixel and returns an RGB image, exact labels in the 11 CamVid classes,
and the hit geometry, so tests know the truth for every pixel.

Everything is seeded and deterministic: the same seed gives the same scene.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from seg_perception.geometry.camera import CameraIntrinsics, CameraPose, pixel_rays_grid

# CamVid ids.
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST, VOID = range(12)

# Ground surfaces beyond the sidewalk (e.g. a lawn) carry VOID: "non-drivable ground" that is no class.
_SUN = np.array([0.45, 0.35, 0.82]) / np.linalg.norm([0.45, 0.35, 0.82])


@dataclass(frozen=True)
class Box:
    """Axis-aligned box [lo, hi] in the grid frame (metres) with a class label and base colour (RGB 0..255)."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    label: int
    color: tuple[int, int, int]
    pattern: str = "plain"  # "plain", "windows"


@dataclass(frozen=True)
class Cylinder:
    """Vertical cylinder of radius r around (x, y) from z0 to z1 (metres)."""

    x: float
    y: float
    r: float
    z0: float
    z1: float
    label: int
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Sphere:
    """Sphere at (x, y, z) of radius r (metres)."""

    x: float
    y: float
    z: float
    r: float
    label: int
    color: tuple[int, int, int]


Primitive = Box | Cylinder | Sphere


@dataclass
class StreetWorld:
    """A flat street: road |y - road_center| <= road_half_width, sidewalks beside it, primitives on top.

    Attributes:
        road_half_width: metres.
        sidewalk_width: metres beyond each road edge; farther ground is VOID (lawn/verge).
        primitives: boxes, cylinders and spheres standing on or above the ground.
        road_color, sidewalk_color: base RGB colours.
        light: global illumination scale (lighting variety).
    """

    road_half_width: float = 4.0
    road_center: float = 0.0
    sidewalk_width: float = 3.0
    primitives: list[Primitive] = field(default_factory=list)
    road_color: tuple[int, int, int] = (90, 88, 92)
    sidewalk_color: tuple[int, int, int] = (165, 155, 140)
    verge_color: tuple[int, int, int] = (95, 120, 60)
    light: float = 1.0

    def ground_label(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """CamVid label of the ground at grid coordinates (x, y): ROAD, PAVEMENT or VOID (uint8)."""
        dy = np.abs(y - self.road_center)
        out = np.full(np.shape(x), VOID, dtype=np.uint8)
        out[dy <= self.road_half_width + self.sidewalk_width] = PAVEMENT
        out[dy <= self.road_half_width] = ROAD
        return out


@dataclass
class SyntheticScene:
    """One rendered frame.

    Attributes:
        rgb: HxWx3 uint8, RGB order.
        labels: HxW uint8 CamVid ids (0..10; 11 = void).
        depth: HxW float64 ray length to the hit in metres (inf for sky).
        points: HxWx3 float64 hit points in the grid frame (nan for sky).
        primitive_index: HxW int32 index into ``world.primitives`` of the hit (-1 ground, -2 sky).
        world, intrinsics, pose: what was rendered.
    """

    rgb: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    points: np.ndarray
    primitive_index: np.ndarray
    world: StreetWorld
    intrinsics: CameraIntrinsics
    pose: CameraPose


def _hash_noise(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Cheap deterministic value noise in [-1, 1] from two world coordinates."""
    ia = np.floor(a / scale)
    ib = np.floor(b / scale)
    h = np.sin(ia * 12.9898 + ib * 78.233) * 43758.5453
    return 2.0 * (h - np.floor(h)) - 1.0


def _intersect_box(o: np.ndarray, d: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Entry distance (inf for a miss) and entry-face normal of rays o + t d with an AABB."""
    lo, hi = np.asarray(box.lo), np.asarray(box.hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t0 = (lo - o) * inv
        t1 = (hi - o) * inv
    tmin = np.minimum(t0, t1)
    tmax = np.maximum(t0, t1)
    tmin = np.where(np.isnan(tmin), -np.inf, tmin)
    tmax = np.where(np.isnan(tmax), np.inf, tmax)
    axis = np.argmax(tmin, axis=-1)
    t_enter = np.max(tmin, axis=-1)
    t_exit = np.min(tmax, axis=-1)
    hit = (t_enter <= t_exit) & (t_enter > 1e-6)
    normal = np.zeros_like(d)
    np.put_along_axis(normal, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1)
    return np.where(hit, t_enter, np.inf), normal


def _intersect_cylinder(o: np.ndarray, d: np.ndarray, c: Cylinder) -> tuple[np.ndarray, np.ndarray]:
    ox, oy = o[0] - c.x, o[1] - c.y
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    a = dx * dx + dy * dy
    b = 2 * (dx * ox + dy * oy)
    cc = ox * ox + oy * oy - c.r * c.r
    disc = b * b - 4 * a * cc
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
        z_side = o[2] + t_side * dz
        side_ok = (disc >= 0) & (a > 1e-12) & (t_side > 1e-6) & (z_side >= c.z0) & (z_side <= c.z1)
        t_side = np.where(side_ok, t_side, np.inf)
        # The top cap is visible from a camera above the cylinder.
        t_cap = (c.z1 - o[2]) / dz
        px, py = ox + t_cap * dx, oy + t_cap * dy
        cap_ok = (t_cap > 1e-6) & (px * px + py * py <= c.r * c.r) & (o[2] > c.z1)
        t_cap = np.where(cap_ok, t_cap, np.inf)
    t = np.minimum(t_side, t_cap)
    nx = np.where(t_side <= t_cap, (ox + t_side * dx) / c.r, 0.0)
    ny = np.where(t_side <= t_cap, (oy + t_side * dy) / c.r, 0.0)
    nz = np.where(t_side <= t_cap, 0.0, 1.0)
    return t, np.stack([nx, ny, nz], axis=-1)


def _intersect_sphere(o: np.ndarray, d: np.ndarray, s: Sphere) -> tuple[np.ndarray, np.ndarray]:
    oc = o - np.array([s.x, s.y, s.z])
    b = d @ oc
    cc = oc @ oc - s.r * s.r
    disc = b * b - cc
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(np.maximum(disc, 0))
    ok = (disc >= 0) & (t > 1e-6)
    t = np.where(ok, t, np.inf)
    p = o + np.where(ok, t, 0)[..., None] * d
    n = (p - np.array([s.x, s.y, s.z])) / s.r
    return t, n


def _intersect(o: np.ndarray, d: np.ndarray, prim: Primitive) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(prim, "intersect"):  # primitives defined elsewhere (synthetic.rgbd.Ramp) bring their own
        return prim.intersect(o, d)
    if isinstance(prim, Box):
        return _intersect_box(o, d, prim)
    if isinstance(prim, Cylinder):
        return _intersect_cylinder(o, d, prim)
    return _intersect_sphere(o, d, prim)


def render(world: StreetWorld, intrinsics: CameraIntrinsics, pose: CameraPose, seed: int = 0) -> SyntheticScene:
    """Ray-cast ``world`` through the camera: one ray per pixel centre, nearest hit wins.

    Returns labels that are exact for the rendered geometry (no anti-aliasing).
    """
    rays = pixel_rays_grid(intrinsics, pose)  # H, W, 3
    o = pose.position
    h, w = rays.shape[:2]
    depth = np.full((h, w), np.inf)
    index = np.full((h, w), -2, dtype=np.int32)
    normal = np.zeros((h, w, 3))
    normal[..., 2] = 1.0

    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(rays[..., 2] < -1e-9, -o[2] / rays[..., 2], np.inf)
    if o[2] > 0:
        depth = t_ground.copy()
        index[np.isfinite(t_ground)] = -1
    for i, prim in enumerate(world.primitives):
        t, n = _intersect(o, rays, prim)
        closer = t < depth
        depth[closer] = t[closer]
        index[closer] = i
        normal[closer] = n[closer]

    points = o + np.where(np.isfinite(depth), depth, np.nan)[..., None] * rays
    labels = np.full((h, w), SKY, dtype=np.uint8)
    base = np.zeros((h, w, 3))
    ground = index == -1
    gx, gy = points[..., 0], points[..., 1]
    labels[ground] = world.ground_label(gx[ground], gy[ground])
    glab = labels[ground]
    gcol = np.where(
        (glab == ROAD)[:, None],
        np.asarray(world.road_color, float),
        np.where(
            (glab == PAVEMENT)[:, None], np.asarray(world.sidewalk_color, float), np.asarray(world.verge_color, float)
        ),
    )
    # Dashed centre line and edge lines on the road; tile seams on the sidewalk.
    dyc = np.abs(gy[ground] - world.road_center)
    dash = (glab == ROAD) & (dyc < 0.08) & (np.mod(gx[ground], 6.0) < 3.0)
    edge = (glab == ROAD) & (np.abs(dyc - (world.road_half_width - 0.25)) < 0.07)
    gcol[dash | edge] = (215, 215, 205)
    seam = (glab == PAVEMENT) & ((np.mod(gx[ground], 1.0) < 0.04) | (np.mod(gy[ground], 1.0) < 0.04))
    gcol[seam] *= 0.8
    base[ground] = gcol * (1.0 + 0.08 * _hash_noise(gx[ground], gy[ground], 0.25))[:, None]

    for i, prim in enumerate(world.primitives):
        sel = index == i
        if not np.any(sel):
            continue
        labels[sel] = prim.label
        col = np.broadcast_to(np.asarray(prim.color, float), (int(sel.sum()), 3)).copy()
        p = points[sel]
        if isinstance(prim, Box) and prim.pattern == "windows":
            along = np.where(np.abs(normal[sel][:, 0]) > 0.5, p[:, 1], p[:, 0])
            win = (
                (np.mod(along, 3.0) > 1.0)
                & (np.mod(along, 3.0) < 2.2)
                & (np.mod(p[:, 2], 3.2) > 1.0)
                & (np.mod(p[:, 2], 3.2) < 2.4)
            )
            col[win] = col[win] * 0.35 + np.array([40, 50, 70])
        elif isinstance(prim, Sphere):
            col *= (1.0 + 0.25 * _hash_noise(p[:, 0] + p[:, 2], p[:, 1] - p[:, 2], 0.15))[:, None]
        base[sel] = col * (1.0 + 0.06 * _hash_noise(p[:, 0] + p[:, 1], p[:, 2], 0.3))[:, None]

    shade = 0.55 + 0.55 * np.clip(normal @ _SUN, 0.0, 1.0)
    rgb = base * shade[..., None] * world.light

    sky = index == -2
    elev = np.clip(rays[..., 2], 0, 1)
    sky_col = np.array([150, 185, 225]) * (1 - elev[..., None]) + np.array([80, 125, 200]) * elev[..., None]
    clouds = np.clip(_hash_noise(rays[..., 0] / (rays[..., 2] + 0.2), rays[..., 1] / (rays[..., 2] + 0.2), 0.6), 0, 1)
    sky_col = sky_col + 50 * clouds[..., None]
    rgb[sky] = sky_col[sky] * world.light
    rng = np.random.default_rng(seed)
    rgb = rgb + rng.normal(0.0, 2.0, rgb.shape)
    return SyntheticScene(
        rgb=np.clip(rgb, 0, 255).astype(np.uint8),
        labels=labels,
        depth=depth,
        points=points,
        primitive_index=index,
        world=world,
        intrinsics=intrinsics,
        pose=pose,
    )


_CAR_COLORS = [
    (190, 30, 30),
    (30, 60, 170),
    (225, 225, 225),
    (30, 30, 35),
    (160, 165, 170),
    (200, 170, 40),
    (40, 120, 60),
]
_BUILDING_COLORS = [(150, 80, 60), (190, 175, 150), (120, 120, 125), (170, 140, 110), (95, 85, 80)]
_CLOTHES = [(200, 40, 40), (40, 60, 150), (40, 40, 40), (220, 220, 210), (200, 180, 60), (90, 60, 40)]


def random_street(seed: int, x_range: tuple[float, float] = (-5.0, 90.0)) -> StreetWorld:
    """A random but plausible street: facades, trees, poles, signs, fences, cars, pedestrians, a cyclist."""
    rng = np.random.default_rng(seed)
    half = float(rng.uniform(3.0, 6.0))
    side = float(rng.uniform(1.5, 4.0))
    world = StreetWorld(
        road_half_width=half,
        sidewalk_width=side,
        road_color=tuple(int(c) for c in rng.integers(70, 115) + rng.integers(-6, 6, 3)),
        sidewalk_color=tuple(int(c) for c in rng.integers(135, 190) + rng.integers(-10, 10, 3)),
        light=float(rng.uniform(0.7, 1.25)),
    )
    x0, x1 = x_range
    prims: list[Primitive] = []

    def col(palette: list[tuple[int, int, int]]) -> tuple[int, int, int]:
        c = np.asarray(palette[int(rng.integers(len(palette)))]) + rng.integers(-15, 15, 3)
        return tuple(int(v) for v in np.clip(c, 0, 255))

    for s in (1.0, -1.0):
        facade = half + side + float(rng.uniform(0.5, 5.0))
        x = x0
        while x < x1:
            length = float(rng.uniform(8, 25))
            if rng.random() < 0.85:
                height = float(rng.uniform(5, 20))
                y_in, y_out = facade, facade + 12.0
                lo, hi = (x, min(s * y_in, s * y_out), 0.0), (x + length, max(s * y_in, s * y_out), height)
                prims.append(Box(lo, hi, BUILDING, col(_BUILDING_COLORS), "windows"))
            x += length + float(rng.uniform(0, 3))
        # Trees and poles along the sidewalk's outer part, fences at the sidewalk edge.
        for xt in np.arange(x0 + rng.uniform(0, 8), x1, rng.uniform(8, 16)):
            yt = s * (half + side * float(rng.uniform(0.5, 0.9)))
            if rng.random() < 0.6:
                h = float(rng.uniform(2.0, 3.5))
                prims.append(Cylinder(float(xt), yt, 0.15, 0.0, h, TREE, col([(85, 60, 40)])))
                prims.append(
                    Sphere(
                        float(xt), yt, h + 1.0, float(rng.uniform(1.2, 2.2)), TREE, col([(50, 110, 40), (70, 130, 50)])
                    )
                )
            else:
                ph = float(rng.uniform(3.5, 6.0))
                prims.append(Cylinder(float(xt), yt, 0.08, 0.0, ph, POLE, col([(110, 110, 115), (60, 60, 60)])))
                if rng.random() < 0.5:
                    sc = col([(220, 30, 30), (30, 80, 200), (230, 200, 40)])
                    prims.append(
                        Box((float(xt) - 0.05, yt - 0.4, ph - 1.5), (float(xt) + 0.05, yt + 0.4, ph - 0.7), SIGN, sc)
                    )
        if rng.random() < 0.5:
            fx = float(rng.uniform(x0, x1 - 20))
            yf = s * (half + side - 0.1)
            prims.append(
                Box(
                    (fx, min(yf, yf + s * 0.08), 0.0),
                    (fx + float(rng.uniform(8, 20)), max(yf, yf + s * 0.08), 1.1),
                    FENCE,
                    col([(120, 100, 70), (140, 140, 140)]),
                )
            )
    # Parked and driving cars on the road, pedestrians on sidewalks, maybe a cyclist.
    for _ in range(int(rng.integers(2, 7))):
        cx = float(rng.uniform(4, x1 - 10))
        lane = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.3, 0.75)) * half
        ln, wd, ht = float(rng.uniform(3.8, 4.8)), float(rng.uniform(1.6, 1.9)), float(rng.uniform(1.3, 1.7))
        prims.append(Box((cx, lane - wd / 2, 0.0), (cx + ln, lane + wd / 2, ht), CAR, col(_CAR_COLORS)))
    for _ in range(int(rng.integers(1, 6))):
        px = float(rng.uniform(3, x1 - 10))
        py = float(rng.choice([-1.0, 1.0])) * (half + side * float(rng.uniform(0.15, 0.6)))
        prims.append(Cylinder(px, py, 0.25, 0.0, float(rng.uniform(1.5, 1.9)), PEDESTRIAN, col(_CLOTHES)))
    if rng.random() < 0.4:
        bx = float(rng.uniform(6, 40))
        by = float(rng.choice([-1.0, 1.0])) * half * 0.85
        prims.append(Box((bx, by - 0.25, 0.0), (bx + 1.7, by + 0.25, 1.75), BICYCLIST, col(_CLOTHES)))
    world.primitives = prims
    return world


DEFAULT_INTRINSICS = CameraIntrinsics.from_fov(480, 360, 62.0)


def default_pose(rng: np.random.Generator | None = None) -> CameraPose:
    """A car-roof camera at about 1.3 m, pitched slightly down; randomised when ``rng`` is given."""
    if rng is None:
        return CameraPose((0.0, 0.0, 1.3), (0.0, np.radians(4.0), 0.0))
    return CameraPose(
        (0.0, float(rng.uniform(-1.0, 1.0)), float(rng.uniform(1.0, 1.8))),
        (
            float(rng.uniform(-0.02, 0.02)),
            float(np.radians(rng.uniform(0.0, 10.0))),
            float(np.radians(rng.uniform(-8, 8))),
        ),
    )


def render_street(seed: int, height: int = 360, width: int = 480) -> SyntheticScene:
    """A random street scene of ``height`` x ``width`` pixels (seeded, deterministic)."""
    rng = np.random.default_rng(seed + 1_000_003)
    world = random_street(seed)
    intrinsics = DEFAULT_INTRINSICS.scaled(width, height)
    return render(world, intrinsics, default_pose(rng), seed=seed)


def street_sequence(
    seed: int, n_frames: int, height: int = 360, width: int = 480, speed_m_per_frame: float = 0.6
) -> Iterator[SyntheticScene]:
    """A camera driving forward along a random street: frames of one consistent world."""
    world = random_street(seed, x_range=(-5.0, 90.0 + n_frames * speed_m_per_frame))
    intrinsics = DEFAULT_INTRINSICS.scaled(width, height)
    base = default_pose()
    for k in range(n_frames):
        x, y, z = base.xyz
        pose = CameraPose((x + k * speed_m_per_frame, -0.4 * world.road_half_width, z), base.rpy)
        yield render(world, intrinsics, pose, seed=seed * 100_000 + k)
