"""The browser viewer: a local viser server showing a mesh, a slice plane through it and the slice.

Everything is in the unit frame of the subject (see :mod:`viewer.subject`);
distances are signed, negative inside. The page is viser's own web client,
which ships inside the viser wheel: nothing is fetched from the network.

Slices are computed on a worker thread that always takes the latest request,
so dragging a slider never queues up stale slices. Every value the page sends
is validated (:func:`clean_position`, :func:`clean_resolution`, ...); a bad one
is refused and the control is put back.
"""

from __future__ import annotations

import dataclasses
import math
import socket
import threading
import time
from typing import Callable

import numpy as np
import trimesh

from sdfkit.errors import SdfkitError
from viewer.slices import (
    AXIS_NAMES,
    auto_range,
    colorize,
    evaluate_points,
    evaluate_slice,
    free_axes,
)
from viewer.subject import Subject

DEFAULT_HOST = "127.0.0.1"
DEFAULT_RESOLUTION = 256
MIN_LIVE_RESOLUTION = 32
MAX_LIVE_RESOLUTION = 1024
RESOLUTION_STEP = 32
POSITION_STEPS = 400  # slider positions across the box
MIN_RANGE = 1e-3  # smallest colour-range limit, unit frame
ISO_LINES = 5  # default iso-lines between the surface and the colour-range limit
DISTANCE_BINS = 8  # colour steps when the reconstruction is coloured by its distance to the ground truth
MESH_RGB = (190, 196, 206)
REFERENCE_RGB = (120, 200, 120)
PROBE_RGB = (230, 30, 160)
# Near-yellow to dark red: the distance colours of the reconstruction.
NEAR_RGB = np.array([255, 236, 160])
FAR_RGB = np.array([170, 20, 20])
GROUND_TRUTH_MODES = ("hidden", "overlay", "beside")


# --- validation of what the page sends -------------------------------------------------------------


def _finite(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SdfkitError(f"{what} must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise SdfkitError(f"{what} must be finite (got {value!r})")
    return number


def clean_axis(value) -> int:
    """Axis index from ``"x"``, ``"y"``, ``"z"`` (what the page's selector sends)."""
    if isinstance(value, str) and value in AXIS_NAMES and len(value) == 1:
        return AXIS_NAMES.index(value)
    raise SdfkitError(f"slice axis must be x, y or z (got {value!r})")


def clean_position(value, lo: float, hi: float, what: str = "slice position") -> float:
    """A plane position inside [lo, hi]; refused when outside or not finite."""
    number = _finite(value, what)
    # Slider steps are rounded by the page; allow that much slack at the ends.
    slack = 1e-6 * max(1.0, abs(hi - lo))
    if not lo - slack <= number <= hi + slack:
        raise SdfkitError(f"{what} must be in [{lo:.4g}, {hi:.4g}] (got {number:.4g})")
    return min(max(number, lo), hi)


def clean_resolution(value) -> int:
    """A live slice resolution: an integer in [MIN_LIVE_RESOLUTION, MAX_LIVE_RESOLUTION]."""
    number = _finite(value, "slice resolution")
    if number != int(number) or not MIN_LIVE_RESOLUTION <= number <= MAX_LIVE_RESOLUTION:
        raise SdfkitError(
            f"slice resolution must be an integer in [{MIN_LIVE_RESOLUTION}, {MAX_LIVE_RESOLUTION}] (got {value!r})")
    return int(number)


def clean_range(value, largest: float) -> float:
    """A colour-range limit in [MIN_RANGE, largest]."""
    number = _finite(value, "colour range")
    if not MIN_RANGE <= number <= largest * (1 + 1e-9):
        raise SdfkitError(f"colour range must be in [{MIN_RANGE}, {largest:.4g}] (got {number:.4g})")
    return number


def clean_iso_step(value, largest: float) -> float:
    """An iso-line spacing in [0, largest]; 0 turns iso-lines off."""
    number = _finite(value, "iso-line spacing")
    if not 0.0 <= number <= largest * (1 + 1e-9):
        raise SdfkitError(f"iso-line spacing must be in [0, {largest:.4g}] (got {number:.4g})")
    return number


def clean_choice(value, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise SdfkitError(f"{what} must be one of {', '.join(choices)} (got {value!r})")
    return value


# --- slices and their placement ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SliceRequest:
    """What the page asks for: a plane across ``axis`` at ``position`` (unit frame)."""

    axis: int
    position: float
    resolution: int
    vmax: float
    iso_step: float


@dataclasses.dataclass
class SentSlice:
    """A slice as the server sent it to the page.

    Attributes
    ----------
    request : SliceRequest
    values : (R, R) float32
        Signed distances, image orientation (see :mod:`viewer.slices`).
    image : (R, R, 3) uint8
        The picture sent.
    seconds : float
        Time to evaluate and colour it.
    """

    request: SliceRequest
    values: np.ndarray
    image: np.ndarray
    seconds: float


def compute_slice(field: Callable[[np.ndarray], np.ndarray], bounds, request: SliceRequest) -> SentSlice:
    """Evaluate and colour one slice."""
    start = time.perf_counter()
    values = evaluate_slice(field, request.axis, request.position, bounds, request.resolution)
    image = colorize(values, vmax=request.vmax, iso_step=request.iso_step)
    return SentSlice(request, values, image, time.perf_counter() - start)


def plane_rotation(axis: int) -> np.ndarray:
    """(3, 3) rotation taking viser's image frame (x right, y down the rows) onto a slice across ``axis``.

    Image columns run along the slice's ``u`` axis and rows along ``-v`` (see :mod:`viewer.slices`).
    """
    u_axis, v_axis = free_axes(axis)
    eu, ev = np.eye(3)[u_axis], np.eye(3)[v_axis]
    return np.stack([eu, -ev, np.cross(eu, -ev)], axis=1)


def plane_pose(axis: int, position: float, bounds) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(wxyz, centre, width, height) of the image plane for a slice across ``axis``."""
    import viser.transforms as vtf

    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    u_axis, v_axis = free_axes(axis)
    centre = (lo + hi) / 2.0
    centre[axis] = position
    wxyz = vtf.SO3.from_matrix(plane_rotation(axis)).wxyz
    return wxyz, centre, float(hi[u_axis] - lo[u_axis]), float(hi[v_axis] - lo[v_axis])


def ray_plane_point(origin, direction, axis: int, position: float) -> np.ndarray | None:
    """(3,) point where a ray meets the plane ``x[axis] = position``, or None if it does not (parallel or behind)."""
    origin, direction = np.asarray(origin, dtype=np.float64), np.asarray(direction, dtype=np.float64)
    if abs(direction[axis]) < 1e-12:
        return None
    t = (position - origin[axis]) / direction[axis]
    if t < 0:
        return None
    point = origin + t * direction
    point[axis] = position
    return point


def distance_to_reference(mesh: trimesh.Trimesh, reference: trimesh.Trimesh) -> np.ndarray:
    """(F,) unsigned distance of each face of ``mesh`` to ``reference``: the largest of its vertices'."""
    from data_prep.sdf import unsigned_distance

    per_vertex = unsigned_distance(np.asarray(reference.vertices), np.asarray(reference.faces),
                                   np.asarray(mesh.vertices, dtype=np.float64))
    return np.asarray(per_vertex)[np.asarray(mesh.faces)].max(axis=1)


def distance_bins(distances: np.ndarray, bins: int = DISTANCE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Bin per-face distances on a linear scale from 0 to their maximum.

    Returns
    -------
    index : (F,) int
        Bin of each face, in [0, bins).
    edges : (bins + 1,) float
        Bin edges.
    """
    top = float(np.max(distances)) if len(distances) else 0.0
    edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, distances, side="right") - 1, 0, bins - 1)
    return index, edges


def bin_colors(bins: int = DISTANCE_BINS) -> np.ndarray:
    """(bins, 3) uint8 colours from near (pale yellow) to far (dark red)."""
    t = np.linspace(0.0, 1.0, bins)[:, None]
    return np.round(NEAR_RGB + (FAR_RGB - NEAR_RGB) * t).astype(np.uint8)


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- the server -------------------------------------------------------------------------------------


class SliceViewer:
    """A viser server showing ``subject``: mesh, slice plane, slice image, probe and controls.

    Parameters
    ----------
    subject : Subject
        The field and meshes (unit frame).
    host : str
        Address to bind; 127.0.0.1 (this machine only) by default.
    port : int or None
        TCP port; None picks a free one.
    resolution : int
        Initial slice resolution.

    Notes
    -----
    ``last_slice`` is the slice most recently sent to the page and ``slices_sent``
    counts them; :meth:`wait_for_slice` blocks until a new one is out.
    """

    def __init__(self, subject: Subject, host: str = DEFAULT_HOST, port: int | None = None,
                 resolution: int = DEFAULT_RESOLUTION):
        import viser

        self.subject = subject
        self.lo, self.hi = (np.asarray(b, dtype=np.float64) for b in subject.bounds)
        self.largest = float(np.max(self.hi - self.lo))
        resolution = clean_resolution(resolution)
        if port is not None and not 1 <= int(port) <= 65535:
            raise SdfkitError(f"port must be in [1, 65535] (got {port})")
        port = free_port(host) if port is None else int(port)
        try:
            self.server = viser.ViserServer(host=host, port=port, label=f"sdfkit: {subject.name}", verbose=False)
        except OSError as exc:
            raise SdfkitError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = host, self.server.get_port()

        centre = (self.lo + self.hi) / 2.0
        first = evaluate_slice(subject.field, 2, float(centre[2]), subject.bounds, MIN_LIVE_RESOLUTION)
        vmax = float(np.clip(min(auto_range(first), self.largest / 4.0), MIN_RANGE, self.largest))
        self._request = SliceRequest(2, float(centre[2]), resolution, vmax, vmax / ISO_LINES)
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.last_slice: SentSlice | None = None
        self.slices_sent = 0
        self.probe_point = centre.copy()
        self.probe_value = float("nan")
        self._syncing = False  # set while the server itself moves controls, to skip their callbacks

        self._build_scene()
        self._build_gui()
        self._worker = threading.Thread(target=self._work, name="sdfkit-slices", daemon=True)
        self._worker.start()
        self._wake.set()
        self.set_probe(self.probe_point)

    # -- public -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def request(self) -> SliceRequest:
        with self._lock:
            return self._request

    def ask(self, **changes) -> SliceRequest:
        """Validate ``changes`` (axis, position, resolution, vmax, iso_step) and schedule that slice."""
        with self._lock:
            current = self._request
            axis = current.axis if "axis" not in changes else changes["axis"]
            if isinstance(axis, str):
                axis = clean_axis(axis)
            elif axis not in (0, 1, 2):
                raise SdfkitError(f"slice axis must be x, y or z (got {axis!r})")
            position = changes.get("position", current.position if axis == current.axis else
                                   float((self.lo[axis] + self.hi[axis]) / 2.0))
            new = SliceRequest(
                axis=int(axis),
                position=clean_position(position, float(self.lo[axis]), float(self.hi[axis]),
                                        f"{AXIS_NAMES[axis]} position"),
                resolution=clean_resolution(changes.get("resolution", current.resolution)),
                vmax=clean_range(changes.get("vmax", current.vmax), self.largest),
                iso_step=clean_iso_step(changes.get("iso_step", current.iso_step), self.largest),
            )
            self._request = new
        self._wake.set()
        return new

    def wait_for_slice(self, after: int, timeout: float = 30.0) -> SentSlice:
        """Block until more than ``after`` slices were sent; the newest one."""
        with self._done:
            if not self._done.wait_for(lambda: self.slices_sent > after, timeout=timeout):
                raise TimeoutError(f"no slice within {timeout} s")
            assert self.last_slice is not None
            return self.last_slice

    def set_probe(self, point) -> float:
        """Move the probe to ``point`` (clamped into the box); returns and shows the signed distance there."""
        point = np.clip(np.asarray(point, dtype=np.float64).reshape(3), self.lo, self.hi)
        value = float(evaluate_points(self.subject.field, point[None])[0])
        self.probe_point, self.probe_value = point, value
        self._probe_marker.position = tuple(point)
        scale = float(getattr(self.subject.normalization, "scale", 1.0))
        side = "inside" if value < 0 else "outside"
        self._probe_text.content = (
            f"**Probe** ({point[0]:+.3f}, {point[1]:+.3f}, {point[2]:+.3f})  \n"
            f"d = **{value:+.4f}** (unit frame) = {value * scale:+.4g} input units, {side}")
        return value

    def stop(self) -> None:
        """Stop the worker and the server."""
        self._stopping.set()
        self._wake.set()
        self._worker.join(timeout=10)
        self.server.stop()

    # -- scene --------------------------------------------------------------------------------------

    def _build_scene(self) -> None:
        scene, subject = self.server.scene, self.subject
        scene.set_up_direction("+y")
        self.server.gui.configure_theme(show_share_button=False, control_width="medium")
        centre = (self.lo + self.hi) / 2.0
        self.server.initial_camera.look_at = tuple(centre)
        self.server.initial_camera.position = tuple(centre + np.array([1.6, 1.1, 2.4]) * self.largest)
        self._mesh = scene.add_mesh_simple("/mesh", subject.mesh.vertices, subject.mesh.faces, color=MESH_RGB,
                                           side="double")
        self._distance_mesh = []
        self._reference = None
        if subject.reference is not None:
            self._reference = scene.add_mesh_simple("/ground_truth", subject.reference.vertices,
                                                    subject.reference.faces, color=REFERENCE_RGB, opacity=0.45,
                                                    side="double", visible=False)
        box = np.array([[self.lo[0], self.lo[1], self.lo[2]], [self.hi[0], self.hi[1], self.hi[2]]])
        corners = np.array([[box[i >> 2 & 1, 0], box[i >> 1 & 1, 1], box[i & 1, 2]] for i in range(8)])
        edges = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
        scene.add_line_segments("/bounds", corners[np.array(edges)], colors=(120, 120, 120), thickness=1.5,
                                thickness_units="screen")
        self._probe_marker = scene.add_icosphere("/probe", radius=0.015 * self.largest, color=PROBE_RGB)
        self._probe_gizmo = scene.add_transform_controls("/probe_gizmo", scale=0.15 * self.largest,
                                                         disable_rotations=True, position=tuple(centre),
                                                         visible=False)

        @self._probe_gizmo.on_update
        def _(_event) -> None:
            self.set_probe(self._probe_gizmo.position)

        self._plane = None

    def _place_plane(self, sent: SentSlice) -> None:
        req = sent.request
        wxyz, centre, width, height = plane_pose(req.axis, req.position, self.subject.bounds)
        # PNG keeps the one-pixel contour sharp (JPEG would smear it).
        plane = self.server.scene.add_image("/slice", sent.image, width, height, format="png", wxyz=wxyz,
                                            position=tuple(centre), visible=self._show_plane.value,
                                            cast_shadow=False, receive_shadow=False)

        @plane.on_click
        def _(event) -> None:
            hit = ray_plane_point(event.ray_origin, event.ray_direction, req.axis, req.position)
            if hit is not None:
                self.set_probe(hit)
                self._probe_gizmo.position = tuple(self.probe_point)

        self._plane = plane

    # -- controls -----------------------------------------------------------------------------------

    def _build_gui(self) -> None:
        gui, req = self.server.gui, self._request
        gui.add_markdown(f"**{self.subject.name}** — {'exact SDF' if self.subject.exact else 'neural field'}; "
                         "blue inside, orange outside, black = zero level")
        self._axis = gui.add_dropdown("slice across", list(AXIS_NAMES), initial_value=AXIS_NAMES[req.axis])
        self._sliders = []
        for axis in range(3):
            lo, hi = float(self.lo[axis]), float(self.hi[axis])
            step = float(f"{(hi - lo) / POSITION_STEPS:.2g}")
            slider = gui.add_slider(f"{AXIS_NAMES[axis]} position", min=lo, max=hi, step=step,
                                    initial_value=float((lo + hi) / 2.0))
            slider.on_update(self._position_callback(axis, slider))
            self._sliders.append(slider)
        self._resolution = gui.add_slider("resolution", min=MIN_LIVE_RESOLUTION, max=MAX_LIVE_RESOLUTION,
                                          step=RESOLUTION_STEP, initial_value=req.resolution)
        range_step = float(f"{self.largest / 1000:.1g}")
        self._range = gui.add_slider("colour range", min=MIN_RANGE, max=self.largest, step=range_step,
                                     initial_value=req.vmax)
        self._iso = gui.add_slider("iso spacing", min=0.0, max=self.largest, step=range_step,
                                   initial_value=req.iso_step)
        self._image = gui.add_image(np.zeros((8, 8, 3), dtype=np.uint8), label="slice", format="png")
        self._timing = gui.add_markdown("")
        self._probe_text = gui.add_markdown("")
        self._probe_drag = gui.add_checkbox("drag probe", False,
                                            hint="Show a gizmo to move the probe; or click on the slice plane.")
        self._show_plane = gui.add_checkbox("show slice plane", True)
        self._show_mesh = gui.add_checkbox("show mesh", True)
        self._gt_mode = None
        self._by_distance = None
        if self.subject.reference is not None:
            self._gt_mode = gui.add_dropdown("ground truth", list(GROUND_TRUTH_MODES), initial_value="hidden")
            self._by_distance = gui.add_checkbox("colour by distance to ground truth", False)
            self._legend = gui.add_markdown("")

        self._axis.on_update(self._guarded(lambda: self.ask(axis=self._axis.value,
                                                            position=self._sliders[clean_axis(self._axis.value)].value)))
        self._resolution.on_update(self._guarded(lambda: self.ask(resolution=self._resolution.value)))
        self._range.on_update(self._guarded(lambda: self.ask(vmax=self._range.value)))
        self._iso.on_update(self._guarded(lambda: self.ask(iso_step=self._iso.value)))

        @self._probe_drag.on_update
        def _(_event) -> None:
            self._probe_gizmo.position = tuple(self.probe_point)
            self._probe_gizmo.visible = bool(self._probe_drag.value)

        @self._show_plane.on_update
        def _(_event) -> None:
            if self._plane is not None:
                self._plane.visible = bool(self._show_plane.value)

        @self._show_mesh.on_update
        def _(_event) -> None:
            self._update_mesh_visibility()

        if self._gt_mode is not None:
            self._gt_mode.on_update(self._guarded(self._update_reference))
            self._by_distance.on_update(self._guarded(self._update_mesh_visibility))

    def _guarded(self, action: Callable[[], object]) -> Callable[[object], None]:
        """A control callback that refuses bad values: the control goes back to the current request."""

        def callback(_event) -> None:
            if self._syncing:
                return
            try:
                action()
            except SdfkitError as exc:
                self._notify_refused(str(exc))
                self._sync_controls()

        return callback

    def _position_callback(self, axis: int, slider) -> Callable[[object], None]:
        def action() -> None:
            self.ask(axis=axis, position=slider.value)
            if self._axis.value != AXIS_NAMES[axis]:
                self._syncing = True
                try:
                    self._axis.value = AXIS_NAMES[axis]
                finally:
                    self._syncing = False

        return self._guarded(action)

    def _sync_controls(self) -> None:
        req = self.request
        self._syncing = True
        try:
            self._axis.value = AXIS_NAMES[req.axis]
            self._sliders[req.axis].value = req.position
            self._resolution.value = req.resolution
            self._range.value = req.vmax
            self._iso.value = req.iso_step
        finally:
            self._syncing = False

    def _notify_refused(self, message: str) -> None:
        for client in self.server.get_clients().values():
            client.add_notification(title="value refused", body=message, auto_close_seconds=5.0, color="red")

    def _update_reference(self) -> None:
        mode = clean_choice(self._gt_mode.value, GROUND_TRUTH_MODES, "ground truth")
        offset = np.zeros(3)
        if mode == "beside":
            offset[0] = 1.15 * float(self.hi[0] - self.lo[0])
        self._reference.position = tuple(offset)
        self._reference.opacity = 0.45 if mode == "overlay" else None
        self._reference.visible = mode != "hidden"

    def _update_mesh_visibility(self) -> None:
        show = bool(self._show_mesh.value)
        by_distance = self._by_distance is not None and bool(self._by_distance.value)
        if by_distance and not self._distance_mesh:
            self._build_distance_mesh()
        self._mesh.visible = show and not by_distance
        for handle in self._distance_mesh:
            handle.visible = show and by_distance

    def _build_distance_mesh(self) -> None:
        """The reconstruction split by distance bin, one flat colour per bin (viser meshes have one colour)."""
        mesh, reference = self.subject.mesh, self.subject.reference
        index, edges = distance_bins(distance_to_reference(mesh, reference))
        colors = bin_colors(len(edges) - 1)
        scale = float(getattr(self.subject.normalization, "scale", 1.0))
        lines = ["**Distance to ground truth** (input units)"]
        for b in range(len(edges) - 1):
            faces = np.asarray(mesh.faces)[index == b]
            r, g, bl = (int(c) for c in colors[b])
            lines.append(f"<span style='color:rgb({r},{g},{bl})'>&#9632;</span> "
                         f"{edges[b] * scale:.3g} – {edges[b + 1] * scale:.3g} ({len(faces)} faces)")
            if len(faces):
                self._distance_mesh.append(self.server.scene.add_mesh_simple(
                    f"/mesh_by_distance/bin{b}", mesh.vertices, faces, color=(r, g, bl), side="double"))
        self._legend.content = "  \n".join(lines)

    # -- worker -------------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            if not self._wake.wait(timeout=0.2):
                continue
            self._wake.clear()
            if self._stopping.is_set():
                break
            request = self.request
            try:
                sent = compute_slice(self.subject.field, self.subject.bounds, request)
            except SdfkitError as exc:
                self._notify_refused(str(exc))
                continue
            if self._stopping.is_set():
                break
            self._place_plane(sent)
            self._image.image = sent.image
            side = "inside" if sent.values.min() < 0 else "no inside on this plane"
            self._timing.content = (f"{AXIS_NAMES[request.axis]} = {request.position:+.3f}, "
                                    f"{request.resolution}² in {sent.seconds * 1000:.0f} ms ({side}); "
                                    f"range ±{request.vmax:.3g}, iso every {request.iso_step:.3g}")
            with self._done:
                self.last_slice = sent
                self.slices_sent += 1
                self._done.notify_all()


def serve(subject: Subject, host: str = DEFAULT_HOST, port: int | None = None,
          resolution: int = DEFAULT_RESOLUTION, announce: Callable[[str], None] = print) -> None:
    """Serve ``subject`` until Ctrl-C, then stop cleanly (returns normally)."""
    viewer = SliceViewer(subject, host=host, port=port, resolution=resolution)
    announce(f"sdfkit viewer at {viewer.url}  (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()
