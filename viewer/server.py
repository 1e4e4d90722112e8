"""The interactive viewer: a local web page with the mesh, a slice plane and its SDF image.

Built on viser, which serves its own bundled web client (no CDN, nothing
fetched at run time) over a websocket. The page shows the reconstruction in 3D
(orbit, zoom), an axis-aligned slice plane through it carrying the field's
slice image (blue inside, orange outside, the zero level as a sharp black
contour, iso-lines), sliders for the plane's position on each axis, the colour
range and slice resolution, the ground truth beside the reconstruction when it
is known, and the reconstruction coloured by its distance to the ground truth.
Clicking on the plane reports the field's value there.
"""

from __future__ import annotations

import socket
import threading

import numpy as np
import viser
import viser.transforms as vtf

from sdfkit.errors import SdfkitError
from sdfkit.extract import evaluate_points
from viewer.slices import CLAMP_EDGE, clamp_distance, colorize, evaluate_slice, free_axes
from viewer.sources import ViewSource

#: Slice resolutions offered by the page.
RESOLUTIONS = ("64", "128", "256", "512")
#: Colour classes of "colour by distance to ground truth" (0 to 1% of the box).
ERROR_BINS = 8
#: Steps of a position slider across the box (before rounding to a round step).
SLIDER_STEPS = 200
#: Opacity of the reconstruction in the first view: the slice plane through its middle shows through it.
MESH_OPACITY = 0.4
#: The reconstruction's colour: blue-grey, as in the renders, dark enough to show at that opacity.
MESH_RGB = (120, 138, 170)
#: The first view: camera direction from the box centre (three-quarter, from above, y up) and distance
#: in bounding-sphere radii, so that the whole box fits viser's default 75 degree field of view.
CAMERA_DIRECTION = (0.55, 0.6, 1.0)
CAMERA_DISTANCE = 1.6


def plane_rotation(axis: int) -> tuple[float, float, float, float]:
    """(w, x, y, z) rotation taking viser's image frame (x along the columns, y DOWN the rows, normal z)
    onto the slice across ``axis``: columns along its u axis, rows towards -v (viewer.slices draws v up)."""
    u, v = free_axes(axis)
    columns, rows = np.eye(3)[u], -np.eye(3)[v]
    matrix = np.stack([columns, rows, np.cross(columns, rows)], axis=1)
    return tuple(float(q) for q in vtf.SO3.from_matrix(matrix).wxyz)  # type: ignore[return-value]


def round_step(span: float, steps: int = SLIDER_STEPS) -> float:
    """A round step (1, 2 or 5 times a power of ten) no larger than ``span / steps``."""
    raw = span / steps if span > 0 else 1.0
    power = 10.0 ** np.floor(np.log10(raw))
    return float(max(m * power for m in (1, 2, 5) if m * power <= raw * (1 + 1e-9)))


def round_to(value: float, step: float) -> float:
    """``value`` on the grid of ``step``, written with no more digits than the step (and never -0)."""
    digits = max(0, -int(np.floor(np.log10(step))))
    # Python's round() of a float without digits is an int, so a tiny negative value becomes 0, never -0.0.
    return round(round(value / step) * step, digits)


def free_port(host: str) -> int:
    """A TCP port on ``host`` that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SliceViewer:
    """A running viewer. ``state`` holds the last slice shown (axis, position, values) for inspection."""

    def __init__(self, source: ViewSource, host: str = "127.0.0.1", port: int | None = None, resolution: int = 256,
                 environment_map: bool = False):
        """Serve ``source``; ``environment_map`` keeps viser's image-based lighting (slow in a software WebGL)."""
        if str(resolution) not in RESOLUTIONS:
            raise SdfkitError(f"slice resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution}")
        self.source = source
        self.lo, self.hi = (np.asarray(b, dtype=np.float64) for b in source.bounds)
        self.port = port if port else free_port(host)
        try:
            self.server = viser.ViserServer(host=host, port=self.port, label=source.title, verbose=False)
        except OSError as exc:
            raise SdfkitError(f"cannot serve on {host}:{self.port}: {exc.strerror or exc}") from None
        self.host = host
        self.lock = threading.Lock()
        self.state: dict = {}
        self._build(resolution, environment_map)
        self.update_slice()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _build(self, resolution: int, environment_map: bool) -> None:
        scene, gui = self.server.scene, self.server.gui
        src = self.source
        scene.set_up_direction("+y")
        # No environment map by default: prefiltering viser's HDRI is the first frame's main cost in a software
        # WebGL (benchmarks/viewer_load.py); the default lights alone light the mesh well enough.
        if not environment_map:
            scene.configure_environment_map(None)
        # No share button: sharing opens a tunnel through an outside server; the viewer stays local.
        gui.configure_theme(show_share_button=False)
        centre = (self.lo + self.hi) / 2
        radius = float(np.linalg.norm(self.hi - self.lo)) / 2
        direction = np.asarray(CAMERA_DIRECTION) / np.linalg.norm(CAMERA_DIRECTION)
        self.server.initial_camera.position = tuple(centre + CAMERA_DISTANCE * radius * direction)
        self.server.initial_camera.look_at = tuple(centre)
        # The slice, then the half-transparent mesh, both with their origin at the box centre: three.js draws
        # transparent objects back to front by origin, and on a tie in the order they were added. The plane
        # drawn first shows through the mesh in front of it and hides the mesh behind it, as a cut would.
        self.slice_handle = scene.add_image("/slice", np.full((2, 2, 3), 255, np.uint8), 1.0, 1.0, format="png",
                                            position=tuple(centre))
        self.mesh_handle = scene.add_mesh_simple(
            "/reconstruction", np.asarray(src.mesh.vertices - centre, np.float32),
            np.asarray(src.mesh.faces, np.uint32),
            color=MESH_RGB, opacity=MESH_OPACITY, position=tuple(centre))
        if src.gt is not None:
            offset = np.array([(self.hi - self.lo)[0] * 1.1, 0.0, 0.0])
            self.gt_handle = scene.add_mesh_simple("/ground_truth", np.asarray(src.gt.vertices, np.float32),
                                                   np.asarray(src.gt.faces, np.uint32), color=(150, 200, 150),
                                                   position=tuple(offset), visible=False)
        gui.add_markdown(f"**{src.title}** — signed distance, negative inside")
        self.axis = gui.add_dropdown("plane", ("x", "y", "z"), initial_value="z")
        self.sliders = []
        for a, name in enumerate("xyz"):
            # Round ends, step and start: viser shows as many digits as the finest of them needs.
            step = round_step(float(self.hi[a] - self.lo[a]))
            low, high = round_to(self.lo[a], step), round_to(self.hi[a], step)
            self.sliders.append(gui.add_slider(name, low, high, step, round_to(centre[a], step)))
        extent = float(np.max(self.hi - self.lo))
        clamp = clamp_distance(src.field)
        vmax = clamp * CLAMP_EDGE if clamp else extent / 8
        vmax_step = round_step(vmax, 100)
        self.vmax = gui.add_number("colour range", round_to(vmax, vmax_step), min=vmax_step,
                                   max=round_to(extent, vmax_step), step=vmax_step)
        self.clamp = clamp
        self.resolution = gui.add_dropdown("slice resolution", RESOLUTIONS, initial_value=str(resolution))
        self.show_mesh = gui.add_checkbox("reconstruction", True)
        self.opacity = gui.add_slider("reconstruction opacity", 0.0, 1.0, 0.05, MESH_OPACITY)
        self.readout = gui.add_markdown("click the plane to read the field")
        if src.gt is not None:
            self.show_gt = gui.add_checkbox("ground truth beside", False)
            self.color_by_error = gui.add_checkbox("colour by distance to ground truth", False)

            @self.show_gt.on_update
            def _(_) -> None:
                self.gt_handle.visible = bool(self.show_gt.value)

            @self.color_by_error.on_update
            def _(_) -> None:
                self._recolor()

        @self.show_mesh.on_update
        def _(_) -> None:
            self.mesh_handle.visible = bool(self.show_mesh.value)

        @self.opacity.on_update
        def _(_) -> None:
            self.mesh_handle.opacity = float(np.clip(float(self.opacity.value), 0.0, 1.0))

        for handle in (self.axis, self.vmax, self.resolution, *self.sliders):
            handle.on_update(lambda _: self.update_slice())

        @scene.on_click()
        def _(event: viser.SceneClickEvent) -> None:
            self._probe(np.asarray(event.ray_origin, dtype=np.float64),
                        np.asarray(event.ray_direction, dtype=np.float64))

    def _recolor(self) -> None:
        """Show the reconstruction in one colour, or coloured by its distance to the ground truth.

        Per-vertex colours would need viser's GLB path, whose decoder is fetched
        from the network; instead the faces are binned by distance into a few
        plain meshes of one colour each.
        """
        src = self.source
        for handle in getattr(self, "error_handles", []):
            handle.remove()
        self.error_handles = []
        if self.color_by_error.value and src.gt is not None:
            vmax = float(np.max(self.hi - self.lo)) / 100
            centres = np.asarray(src.mesh.triangles_center)
            from sdfkit.metrics import distance_to_surface

            d, _ = distance_to_surface(centres, src.gt)
            bins = np.minimum((d / vmax * ERROR_BINS).astype(int), ERROR_BINS - 1)
            for b in np.unique(bins):
                faces = np.asarray(src.mesh.faces)[bins == b]
                t = (b + 0.5) / ERROR_BINS
                color = (int(255 * (1 - 0.15 * t)), int(255 * (1 - 0.9 * t)), int(255 * (1 - 0.9 * t)))
                self.error_handles.append(self.server.scene.add_mesh_simple(
                    f"/error/bin{b}", np.asarray(src.mesh.vertices, np.float32), faces.astype(np.uint32), color=color))
            self.mesh_handle.visible = False
        else:
            self.mesh_handle.visible = bool(self.show_mesh.value)

    def _values(self) -> tuple[int, float, int, float]:
        """The page's settings, checked: axis, position inside the box, a listed resolution, a positive range."""
        axis = "xyz".index(self.axis.value) if self.axis.value in ("x", "y", "z") else 2
        position = float(np.clip(float(self.sliders[axis].value), self.lo[axis], self.hi[axis]))
        resolution = int(self.resolution.value) if self.resolution.value in RESOLUTIONS else 256
        vmax = float(self.vmax.value)
        if not np.isfinite(vmax) or vmax <= 0:
            vmax = float(np.max(self.hi - self.lo)) / 8
        return axis, position, resolution, vmax

    def update_slice(self) -> None:
        """Evaluate and show the slice for the page's current settings."""
        with self.lock:
            axis, position, resolution, vmax = self._values()
            values = evaluate_slice(self.source.field, axis, position, (self.lo, self.hi), resolution)
            image = colorize(values, vmax=vmax, clamp=self.clamp)
            free = free_axes(axis)
            centre = (self.lo + self.hi) / 2
            pos = centre.copy()
            pos[axis] = position
            # Updated in place: a new node would be drawn after the mesh (see _build).
            handle = self.slice_handle
            handle.image = image
            handle.render_width = float(self.hi[free[0]] - self.lo[free[0]])
            handle.render_height = float(self.hi[free[1]] - self.lo[free[1]])
            handle.wxyz = plane_rotation(axis)
            handle.position = tuple(pos)
            self.state = {"axis": axis, "position": position, "resolution": resolution, "values": values,
                          "image": image, "updates": self.state.get("updates", 0) + 1}

    def _probe(self, origin: np.ndarray, direction: np.ndarray) -> None:
        axis, position = self.state["axis"], self.state["position"]
        if abs(direction[axis]) < 1e-9:
            return
        t = (position - origin[axis]) / direction[axis]
        point = origin + t * direction
        if t < 0 or np.any(point < self.lo - 1e-6) or np.any(point > self.hi + 1e-6):
            return
        value = float(evaluate_points(self.source.field, point[None])[0])
        self.state["probe"] = (point, value)
        x, y, z = (round_to(c, 1e-3) for c in point)
        self.readout.content = f"sdf at ({x:.3f}, {y:.3f}, {z:.3f}) = **{round_to(value, 1e-5):+.5f}**"

    def stop(self) -> None:
        self.server.stop()
