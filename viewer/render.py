"""Offscreen renders of meshes with pyrender (EGL when there is no display).

A blue-grey material on a light background, lit by a key light from above that
casts the object's shadow on a ground plane under it, and a dark outline along
the silhouette and depth edges: the object stands out whatever its colour.
Up is +y, as in the slices and the 3D viewer.
"""

from __future__ import annotations

import ctypes.util
import os
import re
from pathlib import Path
from typing import cast

import numpy as np
import trimesh
from PIL import Image

from data_prep.mesh import load_mesh
from sdfkit.errors import SdfkitError
from sdfkit.io import atomic_path

DEFAULT_AZIMUTH = 45.0  # degrees around the up (+y) axis, from +z towards +x
DEFAULT_ELEVATION = 25.0  # degrees above the horizon
BACKGROUND = (244, 245, 248)
MESH_RGB = (0.38, 0.50, 0.72)
GROUND_RGB = (0.72, 0.73, 0.76)
OUTLINE_RGB = (38, 44, 56)
# Side of the ground square in bounding-sphere radii: at the default elevation its far edge lies beyond
# the top of the view.
GROUND_SIZE = 40.0
# A depth jump larger than this fraction of the bounding-sphere radius between neighbouring pixels is an edge.
EDGE_DEPTH = 0.08
# Camera distance in bounding-sphere radii; with a 35 degree field of view the whole object fits.
CAMERA_DISTANCE = 3.3
FIELD_OF_VIEW = 35.0
MAX_SIZE = 4096
MAX_VIEWS = 36
#: The start of :class:`NoOffscreenGL`'s message, which the CLI prints after "error: ".
NO_GL_MESSAGE = "no offscreen OpenGL on this machine"
#: The shared library each PyOpenGL platform loads.
_PLATFORM_LIBRARIES = {"egl": "EGL", "osmesa": "OSMesa", "glx": "GL"}


class NoOffscreenGL(SdfkitError):
    """This machine cannot give an offscreen OpenGL context (no EGL/OSMesa library, no working driver).

    A property of the machine, not a failure of sdfkit: callers may fall back (the fit preview keeps its slices)
    and tests may skip. Any other failure while rendering is raised as itself.
    """


def _pyrender(import_order: bool = True):
    """Import pyrender for offscreen use: EGL when no display, and with ``import_order`` mesh_to_sdf first (it
    refuses to load after pyrender; a process that will not sample with it may skip its import and its
    scikit-learn)."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    platform = os.environ.get("PYOPENGL_PLATFORM", "glx").lower()
    library = _PLATFORM_LIBRARIES.get(platform)
    if library and ctypes.util.find_library(library) is None:
        raise NoOffscreenGL(f"{NO_GL_MESSAGE}: PYOPENGL_PLATFORM={platform} needs lib{library}, which is not "
                            "installed (install EGL or OSMesa drivers, or set PYOPENGL_PLATFORM)")
    if import_order:
        try:
            import mesh_to_sdf  # noqa: F401
        except Exception:
            pass  # optional here; only the import order matters when it is installed
    try:
        import pyrender
    except Exception as exc:  # PyOpenGL raises more than ImportError when it cannot bind its library
        # The GL library exists (checked above), so a failed import is a broken installation: an error, not a skip.
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SdfkitError(f"pyrender could not be imported: {first}") from None
    return pyrender


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (width, height), each in [16, MAX_SIZE]."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match:
        raise SdfkitError(f"size must look like WIDTHxHEIGHT, e.g. 640x480 (got {text!r})")
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= MAX_SIZE and 16 <= height <= MAX_SIZE):
        raise SdfkitError(f"size must be between 16 and {MAX_SIZE} pixels a side (got {width}x{height})")
    return width, height


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """(4, 4) camera-to-world pose looking from ``eye`` at ``target`` (OpenGL convention: camera looks down -z)."""
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight along ``up``
        right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, -forward, eye
    return pose


def camera_eye(center: np.ndarray, radius: float, azimuth: float, elevation: float) -> np.ndarray:
    """(3,) camera position on a sphere around ``center`` (angles in degrees, y up)."""
    az, el = np.radians(azimuth), np.radians(elevation)
    direction = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    return np.asarray(center, dtype=np.float64) + CAMERA_DISTANCE * radius * direction


def outline(depth: np.ndarray, radius: float) -> np.ndarray:
    """(H, W) bool: silhouette and depth-discontinuity pixels of a depth image ((H, W), 0 = background)."""
    covered = depth > 0
    far = np.where(covered, depth, np.inf)
    edge = np.zeros(depth.shape, dtype=bool)
    for axis in (0, 1):
        a = np.swapaxes(far, 0, axis)
        jump = np.zeros(a.shape, dtype=bool)
        differ = ~np.isclose(a[1:], a[:-1], rtol=0.0, atol=EDGE_DEPTH * radius)
        # Mark the nearer pixel of each jump, so the line lies on the object.
        jump[1:] |= differ & (a[1:] < a[:-1])
        jump[:-1] |= differ & (a[:-1] <= a[1:])
        edge |= np.swapaxes(jump, 0, axis)
    return edge & covered


def _ground(mesh: trimesh.Trimesh, radius: float) -> trimesh.Trimesh:
    """A square under the mesh (normal +y), wide enough to fill the view behind it: one even backdrop."""
    lo, hi = mesh.bounds
    centre = (lo + hi) / 2.0
    ground = trimesh.creation.box(extents=(GROUND_SIZE * radius, 0.001 * radius, GROUND_SIZE * radius))
    ground.apply_translation((centre[0], lo[1] - 0.0005 * radius, centre[2]))
    return ground


def _mesh(pyrender, mesh: trimesh.Trimesh, material):
    """A pyrender mesh with its bounds set: pyrender 0.1.45 computes them with ``np.infty``, gone in
    NumPy 2, and the shadow pass asks for them."""
    node = pyrender.Mesh.from_trimesh(mesh, material=material, smooth=False)
    node._bounds = np.asarray(mesh.bounds, dtype=np.float64)
    return node


def _render(items: list[tuple[trimesh.Trimesh, float]], size: tuple[int, int], elevation: float,
            color, import_order: bool = True) -> list[np.ndarray]:
    """Render each (mesh, azimuth) pair with ONE offscreen context (creating one costs more than a frame)."""
    pyrender = _pyrender(import_order)
    width, height = size
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(*color, 1.0), metallicFactor=0.0,
                                                  roughnessFactor=0.7)
    floor = pyrender.MetallicRoughnessMaterial(baseColorFactor=(*GROUND_RGB, 1.0), metallicFactor=0.0,
                                               roughnessFactor=1.0)
    try:
        renderer = pyrender.OffscreenRenderer(width, height)
    except Exception as exc:  # the platform's driver refused a context: the machine, not sdfkit
        raise NoOffscreenGL(f"{NO_GL_MESSAGE}: no context could be created ({type(exc).__name__}); "
                            "install EGL or OSMesa drivers, or set PYOPENGL_PLATFORM") from None
    images = []
    try:
        for mesh, azimuth in items:
            center = mesh.bounds.mean(axis=0)
            radius = float(np.linalg.norm(mesh.extents)) / 2.0 or 1.0
            scene = pyrender.Scene(bg_color=(*(c / 255 for c in BACKGROUND), 1.0), ambient_light=(0.3, 0.3, 0.3))
            node = scene.add(_mesh(pyrender, mesh, material))
            scene.add(_mesh(pyrender, _ground(mesh, radius), floor))
            pose = look_at(camera_eye(center, radius, azimuth, elevation), center)
            scene.add(pyrender.PerspectiveCamera(yfov=np.radians(FIELD_OF_VIEW), aspectRatio=width / height,
                                                 znear=0.01 * radius, zfar=GROUND_SIZE * radius), pose=pose)
            # A head light fills every view the same way; a key light from above casts the ground shadow.
            scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=1.2), pose=pose)
            key = look_at(center + radius * np.array([0.3, 3.0, 0.4]), center)
            scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=2.0), pose=key)
            color_buffer, _ = cast(tuple, renderer.render(scene, flags=pyrender.RenderFlags.SHADOWS_DIRECTIONAL))
            # The outline comes from the object's own depth: the ground would hide its lower silhouette.
            for other in list(scene.mesh_nodes):
                if other is not node:
                    scene.remove_node(other)
            depth = renderer.render(scene, flags=pyrender.RenderFlags.DEPTH_ONLY)
            image = np.array(color_buffer[..., :3], dtype=np.uint8)
            image[outline(np.asarray(depth), radius)] = OUTLINE_RGB
            images.append(image)
    finally:
        renderer.delete()
    return images


def render_views(mesh: trimesh.Trimesh, size: tuple[int, int] = (512, 512), azimuths=(DEFAULT_AZIMUTH,),
                 elevation: float = DEFAULT_ELEVATION, color=MESH_RGB) -> list[np.ndarray]:
    """Render ``mesh`` from each azimuth (degrees).

    Returns
    -------
    images : list of (H, W, 3) uint8
        Light background (:data:`BACKGROUND`), ``size = (W, H)``.
    """
    return _render([(mesh, float(a)) for a in azimuths], size, elevation, color)


def render_meshes(meshes: list[trimesh.Trimesh], size: tuple[int, int] = (512, 512),
                  azimuth: float = DEFAULT_AZIMUTH, elevation: float = DEFAULT_ELEVATION,
                  color=MESH_RGB, import_order: bool = True) -> list[np.ndarray]:
    """One (H, W, 3) uint8 image per mesh, all from the same view (each framed on its own mesh).

    ``import_order`` False skips importing mesh_to_sdf ahead of pyrender, for a process that will never import
    mesh_to_sdf (a forked child that only renders)."""
    return _render([(mesh, azimuth) for mesh in meshes], size, elevation, color, import_order)


def render_mesh(mesh: trimesh.Trimesh, size: tuple[int, int] = (512, 512), azimuth: float = DEFAULT_AZIMUTH,
                elevation: float = DEFAULT_ELEVATION, color=MESH_RGB) -> np.ndarray:
    """(H, W, 3) uint8 image of ``mesh`` from one view (default: three-quarter)."""
    return render_views(mesh, size, (azimuth,), elevation, color)[0]


def orbit_azimuths(views: int) -> np.ndarray:
    """(views,) azimuths in degrees evenly around the object, starting at the three-quarter view."""
    return DEFAULT_AZIMUTH + 360.0 * np.arange(views) / views


def render_row(mesh: trimesh.Trimesh, views: int = 1, size: tuple[int, int] = (512, 512)) -> np.ndarray:
    """(H, W * views, 3) uint8: ``views`` renders evenly around ``mesh``, side by side."""
    if not 1 <= views <= MAX_VIEWS:
        raise SdfkitError(f"views must be in [1, {MAX_VIEWS}] (got {views})")
    return np.concatenate(render_views(mesh, size, orbit_azimuths(views)), axis=1)


def write_render(mesh_path: str | Path, out: str | Path, views: int = 1, size: tuple[int, int] = (512, 512)) -> Path:
    """Render the mesh file ``mesh_path`` to the PNG ``out`` (atomically)."""
    image = render_row(load_mesh(mesh_path), views, size)
    with atomic_path(out) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(out)
