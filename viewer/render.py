"""Offscreen renders of meshes with pyrender (EGL when there is no display)."""

from __future__ import annotations

import os

import numpy as np
import trimesh

from sdfkit.errors import SdfkitError


def _pyrender():
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        import mesh_to_sdf  # noqa: F401  (must be imported before pyrender when both are used)
    except Exception:
        pass
    try:
        import pyrender
    except Exception as exc:
        raise SdfkitError(f"offscreen rendering is unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return pyrender


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """(4, 4) camera-to-world pose looking from ``eye`` at ``target`` (OpenGL convention)."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:
        right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, -forward, eye
    return pose


def render_mesh(mesh: trimesh.Trimesh, size: tuple[int, int] = (512, 512), azimuth: float = 45.0,
                elevation: float = 25.0, color=(0.75, 0.78, 0.82)) -> np.ndarray:
    """(H, W, 3) uint8 image of ``mesh`` from a three-quarter view (angles in degrees)."""
    pyrender = _pyrender()
    center = mesh.bounds.mean(axis=0)
    radius = float(np.linalg.norm(mesh.extents)) / 2.0 or 1.0
    az, el = np.radians(azimuth), np.radians(elevation)
    eye = center + 2.6 * radius * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(*color, 1.0), metallicFactor=0.0, roughnessFactor=0.7)
    scene = pyrender.Scene(bg_color=(1.0, 1.0, 1.0, 1.0), ambient_light=(0.35, 0.35, 0.35))
    scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=False))
    pose = look_at(eye, center)
    scene.add(pyrender.PerspectiveCamera(yfov=np.radians(35.0), znear=0.01 * radius, zfar=10 * radius), pose=pose)
    scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=3.0), pose=pose)
    try:
        renderer = pyrender.OffscreenRenderer(*size)
    except Exception as exc:
        raise SdfkitError(f"no offscreen OpenGL context could be created ({type(exc).__name__}); "
                          "install EGL or OSMesa drivers, or set PYOPENGL_PLATFORM") from None
    try:
        image, _ = renderer.render(scene)
    finally:
        renderer.delete()
    return np.asarray(image[..., :3], dtype=np.uint8)
