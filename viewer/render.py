"""Offscreen renders of meshes with pyrender (EGL when there is no display)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import cast

import numpy as np
import trimesh

from sdfkit.errors import SdfkitError

DEFAULT_AZIMUTH = 45.0  # degrees around the up (+y) axis, from +z towards +x
DEFAULT_ELEVATION = 25.0  # degrees above the horizon
BACKGROUND = (255, 255, 255)
MESH_RGB = (0.75, 0.78, 0.82)
# Camera distance in bounding-sphere radii; with a 35 degree field of view the whole object fits.
CAMERA_DISTANCE = 3.3
FIELD_OF_VIEW = 35.0
MAX_SIZE = 4096
MAX_VIEWS = 36


def _pyrender():
    """Import pyrender for offscreen use: EGL when no display, mesh_to_sdf first (it must precede pyrender)."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        import mesh_to_sdf  # noqa: F401
    except Exception:
        pass  # optional here; only the import order matters when it is installed
    try:
        import pyrender
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SdfkitError(f"offscreen rendering is unavailable: {first}") from None
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


def _render(items: list[tuple[trimesh.Trimesh, float]], size: tuple[int, int], elevation: float,
            color) -> list[np.ndarray]:
    """Render each (mesh, azimuth) pair with ONE offscreen context (creating one costs more than a frame)."""
    pyrender = _pyrender()
    width, height = size
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(*color, 1.0), metallicFactor=0.0,
                                                  roughnessFactor=0.7)
    try:
        renderer = pyrender.OffscreenRenderer(width, height)
    except Exception as exc:
        raise SdfkitError(f"no offscreen OpenGL context could be created ({type(exc).__name__}); "
                          "install EGL or OSMesa drivers, or set PYOPENGL_PLATFORM") from None
    images = []
    try:
        for mesh, azimuth in items:
            center = mesh.bounds.mean(axis=0)
            radius = float(np.linalg.norm(mesh.extents)) / 2.0 or 1.0
            scene = pyrender.Scene(bg_color=(*(c / 255 for c in BACKGROUND), 1.0), ambient_light=(0.35, 0.35, 0.35))
            scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=False))
            pose = look_at(camera_eye(center, radius, azimuth, elevation), center)
            scene.add(pyrender.PerspectiveCamera(yfov=np.radians(FIELD_OF_VIEW), aspectRatio=width / height,
                                                 znear=0.01 * radius, zfar=10 * radius), pose=pose)
            # A head light: every view is lit the same way.
            scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=3.0), pose=pose)
            color_buffer, _ = cast(tuple, renderer.render(scene))  # offscreen: (colour, depth)
            images.append(np.ascontiguousarray(color_buffer[..., :3], dtype=np.uint8))
    finally:
        renderer.delete()
    return images


def render_views(mesh: trimesh.Trimesh, size: tuple[int, int] = (512, 512), azimuths=(DEFAULT_AZIMUTH,),
                 elevation: float = DEFAULT_ELEVATION, color=MESH_RGB) -> list[np.ndarray]:
    """Render ``mesh`` from each azimuth (degrees).

    Returns
    -------
    images : list of (H, W, 3) uint8
        White background, ``size = (W, H)``.
    """
    return _render([(mesh, float(a)) for a in azimuths], size, elevation, color)


def render_meshes(meshes: list[trimesh.Trimesh], size: tuple[int, int] = (512, 512),
                  azimuth: float = DEFAULT_AZIMUTH, elevation: float = DEFAULT_ELEVATION,
                  color=MESH_RGB) -> list[np.ndarray]:
    """One (H, W, 3) uint8 image per mesh, all from the same view (each framed on its own mesh)."""
    return _render([(mesh, azimuth) for mesh in meshes], size, elevation, color)


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
    from PIL import Image

    from data_prep.mesh import load_mesh
    from sdfkit.io import atomic_path

    image = render_row(load_mesh(mesh_path), views, size)
    with atomic_path(out) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(out)
