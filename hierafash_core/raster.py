"""Rasterisation: shapes (capsules, convex polygons, ellipses, line segments) painted into float
images on the pixels of their bounding box only, clipped to the canvas. Shapes are given in pixels,
points as complex numbers x + iy; grow and feather act on the exact signed distance.
"""

from __future__ import annotations

import math

import torch

Capsule = tuple[complex, complex, float]  # segment ends and radius, pixels


def dot(a: complex, b: complex) -> float:
    """Dot product of two plane vectors given as complex numbers."""
    return a.real * b.real + a.imag * b.imag


def convex_hull(points: list[complex]) -> list[complex]:
    """Counter-clockwise hull (in x-right, y-up terms), by the monotone chain."""
    points = sorted(set(points), key=lambda z: (z.real, z.imag))

    def half(ordered):
        chain: list[complex] = []
        for z in ordered:
            while len(chain) >= 2 and ((chain[-1] - chain[-2]).conjugate() * (z - chain[-2])).imag <= 0:
                chain.pop()
            chain.append(z)
        return chain[:-1]

    return half(points) + half(points[::-1])


def _window(low: complex, high: complex, bounds: tuple[int, int, int, int]):
    """Pixel box (x0, x1, y0, y1), end-exclusive, around low..high, clipped to `bounds`; None if empty."""
    x0, x1 = max(math.floor(low.real), bounds[0]), min(math.ceil(high.real) + 1, bounds[1])
    y0, y1 = max(math.floor(low.imag), bounds[2]), min(math.ceil(high.imag) + 1, bounds[3])
    return (x0, x1, y0, y1) if x0 < x1 and y0 < y1 else None


def _affine_fields(box: tuple[int, int, int, int], rows: list[tuple[float, float, float]]) -> torch.Tensor:
    """[K, h, w]: row k's  a x + b y + c  at every pixel of the window, as a row plus a column per field
    (one pass over the pixels; half the CPU time of a [K, 3] x [3, h w] matrix product on one thread)."""
    x0, x1, y0, y1 = box
    a, b, c = torch.tensor(rows).unbind(1)
    along_x = torch.arange(x0, x1, dtype=torch.float32) * a[:, None] + c[:, None]
    along_y = torch.arange(y0, y1, dtype=torch.float32) * b[:, None]
    return along_x[:, None, :] + along_y[:, :, None]


def _largest_affine_field(box: tuple[int, int, int, int], rows: list[tuple[float, float, float]]) -> torch.Tensor:
    """[h, w]: the largest of the rows'  a x + b y + c  at every pixel of the window, as a running maximum
    (two windows of memory, which stay in cache, where all K fields at once do not)."""
    x0, x1, y0, y1 = box
    xs, ys = torch.arange(x0, x1, dtype=torch.float32), torch.arange(y0, y1, dtype=torch.float32)
    largest, field = torch.empty(y1 - y0, x1 - x0), torch.empty(y1 - y0, x1 - x0)
    for k, (a, b, c) in enumerate(rows):
        torch.add(xs.mul(a).add_(c)[None, :], ys.mul(b)[:, None], out=field if k else largest)
        if k:
            torch.maximum(largest, field, out=largest)
    return largest


def _union(region: torch.Tensor, beyond: torch.Tensor, feather: float):
    """Raise `region` to 1 where `beyond` (how far a pixel lies outside the grown shape) is <= 0,
    fading to 0 over `feather` pixels. With a hard edge only the sign of `beyond` matters.

    Float arithmetic only: comparisons and masked writes cost several times more on CPU."""
    if feather > 0:
        # 1 - beyond / feather, capped at 1; below 0 it cannot lower a region that is >= 0
        region.clamp_(min=beyond.mul_(-1 / feather).add_(1).clamp_(max=1))
    else:  # sign(-beyond) is 1 inside; -1 and 0 leave the region as it is
        region.clamp_(min=beyond.neg_().sign_())


def paint_capsules(mask: torch.Tensor, capsules: list[Capsule], grow: float, feather: float):
    """Union capsules (segment a-b thickened by a radius; a disc when a == b) into `mask`, evaluated
    together on one window around them all (a limb's shapes overlap)."""
    capsules = [(a, b, radius + grow) for a, b, radius in capsules if radius + grow > 0]
    if not capsules:
        return
    pad = feather * (1 + 1j)
    low = (
        min(min(a.real, b.real) - r for a, b, r in capsules),
        min(min(a.imag, b.imag) - r for a, b, r in capsules),
    )
    high = (
        max(max(a.real, b.real) + r for a, b, r in capsules),
        max(max(a.imag, b.imag) + r for a, b, r in capsules),
    )
    box = _window(complex(*low) - pad, complex(*high) + pad, (0, mask.shape[1], 0, mask.shape[0]))
    if box is None:
        return
    frames = []
    for a, b, _ in capsules:  # each segment's frame: along it from a, and across it
        u = (b - a) / abs(b - a) if b != a else 1 + 0j
        frames += [(u.real, u.imag, -dot(a, u)), (-u.imag, u.real, -dot(a, u * 1j))]
    fields = _affine_fields(box, frames).unflatten(0, (-1, 2))
    beyond = None
    for (along, across), (a, b, reach) in zip(fields, capsules, strict=True):
        past_ends = along.clamp(0, abs(b - a)).sub_(along)
        squared = past_ends.mul_(past_ends).addcmul_(across, across)
        # a hard edge needs only the sign: compare squared distances, no square root
        shape = squared.sqrt_().sub_(reach) if feather > 0 else squared.sub_(reach * reach)
        beyond = shape if beyond is None else torch.minimum(beyond, shape, out=beyond)
    x0, x1, y0, y1 = box
    _union(mask[y0:y1, x0:x1], beyond, feather)


def paint_polygon(mask: torch.Tensor, hull: list[complex], grow: float, feather: float):
    """Union the convex polygon (counter-clockwise in x-right, y-up terms), grown by `grow`, into `mask`.

    The distance outside is the largest edge-line distance, except beyond a corner, where it is the
    distance to the corner: exact, so a polygon inside another stays inside it after grow and feather.
    """
    band = max(grow, 0.0) + feather
    pad = band * (1 + 1j)
    low = complex(min(z.real for z in hull), min(z.imag for z in hull))
    high = complex(max(z.real for z in hull), max(z.imag for z in hull))
    box = _window(low - pad, high + pad, (0, mask.shape[1], 0, mask.shape[0]))
    if box is None:
        return
    edges = [(a, b - a) for a, b in zip(hull, hull[1:] + hull[:1], strict=True)]
    # signed distance to each edge's line; outward normals point to the right of each edge
    lines = [(d.imag / abs(d), -d.real / abs(d), -dot(a, d * -1j) / abs(d)) for a, d in edges]
    distance = _largest_affine_field(box, lines)
    if band > 0:
        _round_corners(distance, box, edges, band)
    x0, x1, y0, y1 = box
    _union(mask[y0:y1, x0:x1], distance.sub_(grow), feather)


def _round_corners(distance: torch.Tensor, box: tuple[int, int, int, int], edges, band: float):
    """Replace the edge-line distance by the distance to the corner in each corner's outer wedge (its
    normal cone), wherever the edge lines put a pixel within `band`; all corners are evaluated
    together on equal windows."""
    x0, x1, y0, y1 = box
    corners = [corner for corner, _ in edges]
    outgoing = [direction for _, direction in edges]
    incoming = outgoing[-1:] + outgoing[:-1]
    # the edge lines stay within `band` up to the mitre tip, band / cos(turn / 2) from the corner;
    # near-reversals (turns past ~170 degrees, which body outlines never make) are clipped to 10 x band
    cos_turn = min(dot(a, b) / (abs(a) * abs(b)) for a, b in zip(incoming, outgoing, strict=True))
    reach = band / max(math.sqrt(max((1 + cos_turn) / 2, 0.0)), 0.1)
    # Each corner's window is `size` wide, but only its overlap with the box (clipped to the canvas)
    # matters: shrink the shared size to the box and slide each window inside it, which still covers
    # that overlap. Memory is then at most V boxes, whatever the body's size (or grow) on the canvas.
    size = math.ceil(2 * reach) + 2
    size_x, size_y = min(size, x1 - x0), min(size, y1 - y0)
    windows = [(math.floor(c.real - reach), math.floor(c.imag - reach)) for c in corners]
    near = [
        k for k, (ox, oy) in enumerate(windows) if ox < x1 and ox + size > x0 and oy < y1 and oy + size > y0
    ]
    if not near:
        return
    corners, incoming, outgoing = ([items[k] for k in near] for items in (corners, incoming, outgoing))
    origins = [
        (min(max(windows[k][0], x0), x1 - size_x), min(max(windows[k][1], y0), y1 - size_y)) for k in near
    ]
    geometry = torch.tensor(
        [
            [ox - c.real, oy - c.imag, a.real, a.imag, b.real, b.imag]
            for (ox, oy), c, a, b in zip(origins, corners, incoming, outgoing, strict=True)
        ]
    )
    qx = (geometry[:, 0, None] + torch.arange(size_x, dtype=torch.float32))[:, None, :]  # [V, 1, sx]
    qy = (geometry[:, 1, None] + torch.arange(size_y, dtype=torch.float32))[:, :, None]  # [V, sy, 1]: y - corner y
    in_x, in_y, out_x, out_y = (geometry[:, k, None, None] for k in range(2, 6))
    beyond = torch.add(qx * in_x, qy * in_y).ge(0) & torch.add(qx * out_x, qy * out_y).le(0)
    # outside its wedge a corner's distance is below the edge-line distance, so max() leaves it alone
    corner_distance = torch.hypot(qx, qy).masked_fill_(~beyond, -math.inf)
    for (ox, oy), window in zip(origins, corner_distance, strict=True):
        local = distance[oy - y0 : oy - y0 + size_y, ox - x0 : ox - x0 + size_x]
        local.clamp_(min=window)


def _offsets(image: torch.Tensor, box: tuple[int, int, int, int], origin: complex):
    """The window `box` (x0, x1, y0, y1) of `image`, as a view, and its pixels' x and y offsets from `origin`
    (a row and a column)."""
    x0, x1, y0, y1 = box
    dx = torch.arange(x0, x1, dtype=torch.float32)[None, :] - origin.real
    dy = torch.arange(y0, y1, dtype=torch.float32)[:, None] - origin.imag
    return image[y0:y1, x0:x1], dx, dy


def fill_segment(image: torch.Tensor, a: complex, b: complex, half_width: float, color: torch.Tensor):
    """Paint the pixels within `half_width` of the segment a-b (a line of thickness 2 x half_width)."""
    height, width = image.shape[:2]
    low, high = complex(min(a.real, b.real), min(a.imag, b.imag)), complex(max(a.real, b.real), max(a.imag, b.imag))
    pad = half_width * (1 + 1j)
    box = _window(low - pad, high + pad, (0, width, 0, height))
    if box is None:
        return
    region, dx, dy = _offsets(image, box, a)
    d = b - a
    t = ((dx * d.real + dy * d.imag) / max(abs(d) ** 2, 1e-12)).clamp(0, 1)
    inside = (dx - t * d.real).square() + (dy - t * d.imag).square() <= half_width**2
    region.copy_(torch.where(inside[..., None], color, region))


def fill_ellipse(
    image: torch.Tensor, a: complex, b: complex, half_width: float, color: torch.Tensor, blend: float = 1.0
):
    """Paint the ellipse whose major axis is the segment a-b (a circle when a == b), over what is there
    at opacity `blend`."""
    centre, half_length = (a + b) / 2, max(abs(b - a) / 2, half_width)
    u = (b - a) / abs(b - a) if b != a else 1 + 0j
    # axis-aligned half extents of the rotated ellipse
    hx = math.hypot(half_length * u.real, half_width * u.imag)
    hy = math.hypot(half_length * u.imag, half_width * u.real)
    height, width = image.shape[:2]
    x0, x1 = max(math.ceil(centre.real - hx), 0), min(math.floor(centre.real + hx) + 1, width)
    y0, y1 = max(math.ceil(centre.imag - hy), 0), min(math.floor(centre.imag + hy) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    region, dx, dy = _offsets(image, (x0, x1, y0, y1), centre)
    along = (dx * u.real + dy * u.imag) / half_length
    across = (dy * u.real - dx * u.imag) / half_width
    painted = color if blend == 1.0 else region * (1 - blend) + color * blend
    region.copy_(torch.where((along.square() + across.square() <= 1)[..., None], painted, region))
