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

import dataclasses
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import trimesh

from sdfkit.errors import SdfkitError
from viewer.slices import colorize, evaluate_points, evaluate_slice

if TYPE_CHECKING:
    import viser

#: Slice resolutions offered by the page.
RESOLUTIONS = ("64", "128", "256", "512")
#: Colour classes of "colour by distance to ground truth" (0 to 1% of the box).
ERROR_BINS = 8
#: Rotations (w, x, y, z) taking viser's image frame (x along the columns, y DOWN the rows, normal z)
#: onto each axis' slice: columns along the slice's u axis, rows towards -v (viewer.slices draws v
#: up), normal u x (-v). An identity for z would show the slice upside down.
PLANE_ROTATIONS = {
    0: (0.5, -0.5, -0.5, 0.5),  # columns -> +y, rows -> -z
    1: (np.sqrt(0.5), -np.sqrt(0.5), 0.0, 0.0),  # columns -> +x, rows -> -z
    2: (0.0, 1.0, 0.0, 0.0),  # columns -> +x, rows -> -y
}


@dataclasses.dataclass
class ViewSource:
    """What the viewer shows, all in the unit frame: a field, its box, meshes."""

    field: Callable[[np.ndarray], np.ndarray]
    bounds: tuple[np.ndarray, np.ndarray]
    mesh: trimesh.Trimesh
    gt: trimesh.Trimesh | None = None
    title: str = "sdfkit"


def free_port(host: str) -> int:
    """A TCP port on ``host`` that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SliceViewer:
    """A running viewer. ``state`` holds the last slice shown (axis, position, values) for inspection."""

    def __init__(self, source: ViewSource, host: str = "127.0.0.1", port: int | None = None, resolution: int = 256):
        import viser

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
        self._build(resolution)
        self.update_slice()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _build(self, resolution: int) -> None:
        scene, gui = self.server.scene, self.server.gui
        src = self.source
        scene.set_up_direction("+y")
        # No share button: sharing opens a tunnel through an outside server; the viewer stays local.
        gui.configure_theme(show_share_button=False)
        centre = (self.lo + self.hi) / 2
        radius = float(np.linalg.norm(self.hi - self.lo)) / 2
        try:
            self.server.initial_camera.position = tuple(centre + radius * np.array([1.2, 0.9, 1.8]))
            self.server.initial_camera.look_at = tuple(centre)
        except AttributeError:  # older viser: keep its default camera
            pass
        self.mesh_handle = scene.add_mesh_simple("/reconstruction", np.asarray(src.mesh.vertices, np.float32),
                                                 np.asarray(src.mesh.faces, np.uint32), color=(190, 196, 205))
        if src.gt is not None:
            offset = np.array([(self.hi - self.lo)[0] * 1.1, 0.0, 0.0])
            self.gt_handle = scene.add_mesh_simple("/ground_truth", np.asarray(src.gt.vertices, np.float32),
                                                   np.asarray(src.gt.faces, np.uint32), color=(150, 200, 150),
                                                   position=tuple(offset), visible=False)
        gui.add_markdown(f"**{src.title}** — signed distance, negative inside")
        self.axis = gui.add_dropdown("plane", ("x", "y", "z"), initial_value="z")
        self.sliders = []
        for a, name in enumerate("xyz"):
            step = float(self.hi[a] - self.lo[a]) / 200
            self.sliders.append(gui.add_slider(name, float(self.lo[a]), float(self.hi[a]), step, float(centre[a])))
        extent = float(np.max(self.hi - self.lo))
        self.vmax = gui.add_number("colour range", round(extent / 8, 4), min=1e-4, max=extent, step=1e-4)
        self.resolution = gui.add_dropdown("slice resolution", RESOLUTIONS, initial_value=str(resolution))
        self.show_mesh = gui.add_checkbox("reconstruction", True)
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

        for handle in (self.axis, self.vmax, self.resolution, *self.sliders):
            handle.on_update(lambda _: self.update_slice())

        @scene.on_click()
        def _(event: viser.SceneClickEvent) -> None:
            origin, direction = np.asarray(event.ray_origin, np.float64), np.asarray(event.ray_direction, np.float64)
            self._probe(origin, direction)

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
                red, green, blue = (int(255 * ((1 - t) + t * c)) for c in (0.85, 0.1, 0.1))
                self.error_handles.append(self.server.scene.add_mesh_simple(
                    f"/error/bin{b}", np.asarray(src.mesh.vertices, np.float32), faces.astype(np.uint32),
                    color=(red, green, blue)))
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
            image = colorize(values, vmax=vmax)
            free = [a for a in range(3) if a != axis]
            centre = (self.lo + self.hi) / 2
            pos = centre.copy()
            pos[axis] = position
            self.server.scene.add_image(
                "/slice", image, render_width=float(self.hi[free[0]] - self.lo[free[0]]),
                render_height=float(self.hi[free[1]] - self.lo[free[1]]), format="png",
                wxyz=PLANE_ROTATIONS[axis], position=tuple(pos),
            )
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
        value = float(evaluate_points(self.source.field, point[None])[0])  # one point: see evaluate_points
        self.state["probe"] = (point, value)
        self.readout.content = f"sdf at ({point[0]:.3f}, {point[1]:.3f}, {point[2]:.3f}) = **{value:+.5f}**"

    def stop(self) -> None:
        self.server.stop()
