"""Point clouds (scans without faces) in, SDF samples out.

Readers
    vertex-only PLY (with or without ``nx ny nz``), ``.xyz`` / ``.pts`` / ``.txt`` (``x y z [nx ny nz]`` per line,
    ``#`` comments, an optional first line holding only the point count), ``.npy`` ((n, 3) or (n, 6)) and ``.npz``
    (``points`` (n, 3), optional ``normals`` (n, 3)); ``.las`` / ``.laz`` through laspy (and lazrs), an optional
    extra. A cloud above :data:`MAX_POINTS` is refused from its header,
    before its points are read.

Normals
    used as given when the file has them (``normals: auto``); otherwise fitted as the plane of each point's
    ``neighbours`` nearest points (point-cloud-utils) and oriented consistently by propagation along a minimum
    spanning tree of the k-nearest-neighbour graph weighted by ``1 - |n_i . n_j|`` (Hoppe et al. 1992). Each
    connected part of that graph is then turned to face outwards: the part's enclosed volume by the divergence
    theorem, ``1/3 sum a_i (p_i - c) . n_i``, must be positive.

Denoising
    when the off-plane spread of each point's k neighbours is large against their reach (:data:`NOISE_RATIO`),
    every point moves onto a quadratic height field fitted to its neighbourhood (:func:`jet_project`), sized from
    the noise (:func:`denoise_neighbours`). Normals to estimate are then the planes of those neighbourhoods
    (:func:`jet_fit`), oriented over the points projected onto their k-neighbour planes.
    A noisy cloud denser than the noise lets its widest height fields span is first thinned to an even random
    half of its points, again until they do (:func:`thin_dense_noise`; without normals the last halving averages
    pairs of points instead, :func:`thin_cloud`): a fixed number of neighbours spans less of a denser cloud's
    surface, and its fits, and the orientation that follows their planes, are the noise's.
    A cloud with its own normals leaves the neighbours facing away out of each fit (:data:`FACING_MIN_COS`).
    The fit lies inside the surface by the noise's variance times the mean curvature, which :func:`unshrink`
    adds back when the normals are given.

Signs and distances without faces
    the sign is the fast winding number of the oriented cloud (Barill et al. 2018, point-cloud-utils' libigl
    binding), inside where it exceeds 1/2; each point stands for a disc of area ``pi r_k^2 / k`` (r_k: distance
    to its k-th neighbour). A gap in the cloud is closed by the winding number's 1/2 level, not left open.
    With ``tangent_reach`` above 0 (off by default), next to a clean cloud, within that many median disc radii of
    its nearest point, the sign is the side of that point's tangent plane instead: the winding number's queries
    there cost most of its time (a denoised cloud keeps the winding number, which signs its scatter better).
    A cloud of more than ``winding_points`` points takes its winding numbers from an even subsample of that
    many; the tangent planes then reach at least the subsample's median disc radius, within which that coarser
    sum is unreliable (:class:`WindingCloud`). Queries farther from the cloud than two median disc radii of an
    even 10,000-point subsample take their winding numbers from that subsample (:meth:`WindingCloud.with_coarse`):
    the kernel's tree is smaller, and so far out the sign is the same.
    The unsigned distance of a query q with nearest cloud point p (normal n, disc radius h) is
    ``max(|(q - p) . n|, |q - p| - h)``: the distance to p's tangent plane near the surface, and the distance to
    the nearest point less the gap the discs leave further away (never more than the true distance to a surface
    through the points, up to h).

Sign convention: **negative inside**, positive outside.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import point_cloud_utils as pcu
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree
from scipy.spatial import KDTree

from data_prep.errors import SdfkitError
from data_prep.mesh import FLAT_TOLERANCE, Normalization, file_hash

#: Suffixes always read as point clouds; a ``.ply`` is a point cloud when its header declares no faces.
POINT_SUFFIXES = (".xyz", ".pts", ".txt", ".npy", ".npz", ".las", ".laz")

#: How to get the optional LAS/LAZ readers (``pyproject.toml``'s ``las`` extra).
LAS_EXTRA = "pip install 'sdfkit[las]'"

#: Larger clouds are refused (from the header, before reading): kNN graphs, normal estimation and the winding
#: number's tree take a few hundred bytes a point. Subsample larger scans first.
MAX_POINTS = 10_000_000

#: Fewer points than this cannot define normals (a plane per k-neighbourhood) nor a surface to fit.
MIN_POINTS = 100

#: Points per block of plane fits (divided by 16); bounds their memory.
CHUNK = 1 << 18
#: Queries per call to the winding-number kernel. Each call builds the cloud's tree afresh (over half a minute
#: for a million points: ``benchmarks/results/cloud_prep-*.md``) while a query needs no memory of its own, so one
#: call takes all of a fit's samples.
WINDING_CHUNK = 1 << 22
#: :attr:`PointsConfig.tangent_reach`: off. On clean clouds of 10,000 and 100,000 points sampled from the penguin
#: and human_woman, 2 disc radii signed 0.093-0.333% of the sampler's samples wrong against the winding number's
#: 0.153-0.460% on three, 2.987% against 2.710% on the sparse human_woman, and the sampler took 0.30-0.73 times
#: as long; on noisy clouds (0.25% and 1% of the diagonal) the tangent planes were wrong more often, by 0.3 to 7
#: percentage points (``benchmarks/results/tangent_reach-20261207.md``). But the fits did not follow the sign
#: counts: the 10,000-point penguin's Chamfer grew 22% (the planes facet the surface between sparse points), the
#: 100,000-point clouds' IoU fell by 0.0002-0.0003, for 2.6-4.0 s less preparing
#: (``cloud_command-{before-,}reach-{clean,sparse}-20261207.md``).
TANGENT_REACH = 0.0
#: :attr:`PointsConfig.coarse_winding_points` and :data:`COARSE_REACH`: on clean 100,000-point clouds of the
#: penguin and human_woman, of the fit's 500,000 samples those farther than 2 median disc radii of a 5,000-,
#: 10,000- or 20,000-point subsample (250,000-320,000 of them) got the same sign through it as through the whole
#: cloud, every one; at 1.5 radii 0-3 differed, at 1 radius 0-16. With 10,000 points and 2 radii the winding
#: numbers took 6.9 and 6.0 s against 11.7 and 9.5 s through the whole cloud
#: (``benchmarks/results/coarse_winding-20261207.md``).
COARSE_POINTS = 10_000
COARSE_REACH = 2.0
#: Where tangent planes sign the samples next to the cloud, this many samples, drawn evenly, have their winding
#: number computed anyway, for the report's sign-trust figures.
TRUST_SAMPLES = 50_000

#: ``denoise: auto`` moves the points onto their neighbourhoods' height fields (:func:`jet_project`) when the
#: median distance of a point's neighbours from their plane exceeds this share of the median k-th-neighbour
#: distance. A clean cloud's off-plane spread is the surface's curvature over a neighbourhood, a few percent of
#: its radius.
NOISE_RATIO = 0.05

#: Denoising fits each point's neighbourhood out to this many times the median off-plane spread of its k nearest
#: neighbours. On the penguin with noise of 0.25% and 1% of the diagonal (``benchmarks/points_denoise.py``) it
#: picks the best of 16 to 256 neighbours at 100,000 points and one size too many at 10,000.
DENOISE_REACH = 6.0

#: With the cloud's own normals, a height-field fit leaves out the neighbours whose normal turns more than 60 degrees
#: from the point's (:func:`jet_project`), and takes :data:`FACING_NEIGHBOUR_FACTOR` times the neighbours
#: :func:`denoise_neighbours` picks: with the far side of thin parts left out, more neighbours average more noise
#: away before they flatten the shape. On the five val meshes at noise of 0.25% and 1% of the diagonal, 10,000 and
#: 100,000 points, it leaves 0.22-0.98 times the mean squared distance to the surface that the fit over all the
#: picked neighbours leaves (``benchmarks/results/points_denoise-facing.md``). Estimated normals are not used so:
#: on a noisy cloud of thin parts enough of them face the wrong way to leave out the wrong neighbours.
FACING_MIN_COS = 0.5
FACING_NEIGHBOUR_FACTOR = 2

#: A denoised cloud is thinned to an even random half of its points, a quarter, ... (:func:`thin_dense_noise`), while
#: the off-plane spread of its widest denoising neighbourhoods (16 k points) exceeds this share of their reach
#: (:func:`widest_spread`). Noise narrower than that reach gives its deviation over the reach; noise as wide as the
#: reach fills the neighbourhood like a ball, about 0.4. On clouds of the val meshes (``noise_average-20261207.md``,
#: ``noise_average-100k-20261207.md``) it measured 0.05-0.17 at noise of 0.25% of the diagonal and 10,000 to
#: 100,000 points, and 0.24 (penguin) and 0.33 (human_woman) at a million; at 1%, 0.12-0.36 at 10,000 and 100,000
#: points, 0.34 and 0.39 at 200,000, 0.40 and 0.41 at a million. Halved on a voxel grid (the rule before thinning),
#: the 200,000 penguin points at 1% (0.34) fitted at Chamfer 1.457e-04 against 1.150e-04 as read, so 0.35 leaves
#: them (``cloud_command-{before-,}average-200k-20261207.md``). Averaging every denoised cloud to 100,000 points on
#: a voxel grid, a first version, took the million penguin points at 0.25% from 1.283e-06 to 6.346e-06
#: (``cloud_command-{before-,}voxel-1m-20261207.md``).
SATURATED_SPREAD = 0.35
#: :func:`thin_dense_noise` leaves at least this many points. Below 50,000 a thin part's two sides fill the widest
#: neighbourhoods, noise or not: a floor of 10,000 took human_woman's 100,000 points at 1% down to about 12,000,
#: which then got 0.882 of their signs right against 0.913 as read (``noise_average-100k-20261207.md``, on a voxel
#: grid). A floor of about 100,000 instead fitted human_woman's million points at 1% worse than as read
#: (``cloud_command-average-floor-1m-20261207.md``, on a voxel grid).
THINNED_FLOOR = 50_000

#: :func:`unshrink` moves no point further than this many times the noise's deviation. On human_woman with noise of
#: 1% of the diagonal, 11 points of 100,000 reach it; without it the furthest would move 0.14 of the unit frame.
UNSHRINK_MAX_HS = 0.5


@dataclasses.dataclass(frozen=True)
class PointsConfig:
    """How a point cloud becomes SDF samples."""

    normals: str = "auto"
    """``auto``: the file's normals if it has them, else estimated; ``given``: require them; ``estimate``: ignore
    the file's normals and estimate and orient new ones."""
    neighbours: int = 16
    """k of the k-nearest-neighbour plane fits, disc areas and the orientation graph."""
    outlier_std: float = 3.0
    """Drop points whose mean distance to their k neighbours exceeds the cloud's mean by this many standard
    deviations (statistical outlier removal); 0 keeps every point."""
    surface_fraction: float = 0.1
    """Share of the near-surface samples put on the cloud's points themselves, with signed distance 0."""
    denoise: str = "auto"
    """``on``: move each point onto a quadratic surface fitted to its neighbours (:func:`jet_project`) before
    anything else uses it; ``off``: keep the points as read; ``auto``: ``on`` when the cloud's :func:`noise_ratio`
    exceeds :data:`NOISE_RATIO`."""
    winding_points: int = 100_000
    """Larger clouds take their winding numbers from an even subsample of this many points (:class:`WindingCloud`):
    the kernel's tree and queries grow with the points (87.6 s against 33.7 s for 250,000 queries of the
    million-point penguin), while its signs differ from the whole cloud's only next to it, where the tangent plane
    decides."""

    coarse_winding_points: int = COARSE_POINTS
    """Queries far from the cloud take their winding numbers from an even subsample of this many points
    (:meth:`WindingCloud.with_coarse`; 0: never). Only clouds of at least twice as many points have one."""

    thin_noise: bool = True
    """Thin a denoised cloud denser than its noise lets the height fields span to an even random share of its
    points first (:func:`thin_dense_noise`, :func:`thin_cloud`). With exact normals and noise of 1% of the diagonal
    a million points of the penguin and human_woman fitted at Chamfer 1.470e-05 and 3.468e-05 in 113.9 and 66.3 s
    thinned, 1.741e-05 and 8.293e-05 in 445.8 and 352.8 s as read (BENCHMARKS.md, "Noisy clouds denser than their
    noise: thinned")."""

    tangent_reach: float = TANGENT_REACH
    """Within this many median disc radii of a clean cloud a query's sign is the side of its nearest point's
    tangent plane, not the winding number (0, the default: the winding number everywhere; a denoised cloud takes
    0; see :data:`TANGENT_REACH`)."""

    def __post_init__(self):
        if self.normals not in ("auto", "given", "estimate"):
            raise SdfkitError(f"--normals must be auto, given or estimate, got '{self.normals}'")
        if not 3 <= self.neighbours <= 128:
            raise SdfkitError(f"points neighbours must be between 3 and 128, got {self.neighbours}")
        if self.denoise not in ("auto", "on", "off"):
            raise SdfkitError(f"points denoise must be auto, on or off, got '{self.denoise}'")
        if self.winding_points < MIN_POINTS:
            raise SdfkitError(f"points winding_points must be at least {MIN_POINTS}, got {self.winding_points}")
        if self.coarse_winding_points != 0 and self.coarse_winding_points < MIN_POINTS:
            raise SdfkitError(f"points coarse_winding_points must be 0 or at least {MIN_POINTS}, got "
                              f"{self.coarse_winding_points}")
        if not self.tangent_reach >= 0:
            raise SdfkitError(f"points tangent_reach must be at least 0, got {self.tangent_reach}")
        if self.outlier_std < 0 or not 0.0 <= self.surface_fraction <= 1.0:
            raise SdfkitError("points outlier_std must be non-negative and surface_fraction in [0, 1]")


@dataclasses.dataclass
class PointCloud:
    """points : (n, 3) float64; normals : (n, 3) float64 unit vectors, or None."""

    points: np.ndarray
    normals: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------------- reading


def _ply_header(path: Path) -> tuple[bytes, dict[str, int]]:
    """The PLY header's bytes and its element counts (``{"vertex": n, "face": m}``)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head.startswith(b"ply"):
        raise SdfkitError(f"cannot read {path}: not a PLY file")
    header = head.split(b"end_header", 1)[0]
    counts: dict[str, int] = {}
    for line in header.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == b"element":
            try:
                counts[words[1].decode("ascii", "replace")] = int(words[2])
            except ValueError:
                raise SdfkitError(f"cannot read {path}: bad PLY element line {line[:60]!r}") from None
    return header, counts


def is_point_cloud(path: str | Path) -> bool:
    """Whether ``path`` names a point-cloud file: a :data:`POINT_SUFFIXES` file, or a PLY that declares no faces.

    A file that does not exist or is not a PLY is not judged here (False): the mesh reader reports it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in POINT_SUFFIXES:
        return True
    if suffix != ".ply" or not path.is_file():
        return False
    try:
        header, counts = _ply_header(path)
    except (SdfkitError, OSError):
        return False
    faces = counts.get("face", 0) + counts.get("tristrips", 0)
    return b"element vertex" in header and faces == 0


def _check_count(count: int, path: Path) -> None:
    if count > MAX_POINTS:
        raise SdfkitError(f"{path} has {count:,} points, more than the limit of {MAX_POINTS:,} "
                          "(subsample the cloud first)")


def _split_columns(array: np.ndarray, path: Path) -> PointCloud:
    if array.ndim != 2 or array.shape[1] not in (3, 6):
        raise SdfkitError(f"{path}: expected rows of x y z or x y z nx ny nz, got an array of shape {array.shape}")
    array = np.asarray(array, dtype=np.float64)
    return PointCloud(array[:, :3].copy(), array[:, 3:6].copy() if array.shape[1] == 6 else None)


def _read_ply(path: Path) -> PointCloud:
    import trimesh

    _, counts = _ply_header(path)
    _check_count(counts.get("vertex", 0), path)
    if counts.get("vertex", 0) == 0:
        return PointCloud(np.zeros((0, 3)))
    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as exc:  # trimesh raises many exception types for bad files
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise SdfkitError(f"cannot read point cloud {path}: {reason}") from None
    if not isinstance(loaded, (trimesh.PointCloud, trimesh.Trimesh)):
        raise SdfkitError(f"cannot read point cloud {path}: it holds no vertices ({type(loaded).__name__})")
    raw = loaded.metadata.get("_ply_raw", {}).get("vertex", {}).get("data")
    points = np.asarray(loaded.vertices, dtype=np.float64)
    # trimesh keeps the raw vertex properties as a dict of columns (ASCII) or a structured array (binary).
    names = raw.keys() if isinstance(raw, dict) else (raw.dtype.names or ()) if raw is not None else ()
    if raw is None or not all(k in names for k in ("nx", "ny", "nz")):
        return PointCloud(points)
    normals = np.stack([np.asarray(raw[k], dtype=np.float64).reshape(-1) for k in ("nx", "ny", "nz")], axis=1)
    return PointCloud(points, normals)


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            count += block.count(b"\n")
    return count


def _read_text(path: Path) -> PointCloud:
    _check_count(_count_lines(path), path)
    with open(path, "rb") as fh:
        first = fh.readline().split(b"#", 1)[0].split()
    skip = 1 if len(first) == 1 and first[0].isdigit() else 0  # .pts files often start with the count alone
    try:
        with warnings.catch_warnings():  # an empty file is reported below, in one line
            warnings.simplefilter("ignore", UserWarning)
            array = np.loadtxt(path, dtype=np.float64, comments="#", ndmin=2, skiprows=skip)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SdfkitError(f"cannot read point cloud {path}: {str(exc).strip().splitlines()[0][:120]}") from None
    if array.size == 0:
        return PointCloud(np.zeros((0, 3)))
    return _split_columns(array, path)


def _read_npy(path: Path) -> PointCloud:
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError and others for damaged files
        raise SdfkitError(f"cannot read point cloud {path}: not a valid .npy ({type(exc).__name__})") from None
    if mapped.ndim == 2:
        _check_count(mapped.shape[0], path)
    if mapped.dtype.kind not in "fiu":
        raise SdfkitError(f"{path}: expected a numeric array, got dtype {mapped.dtype}")
    return _split_columns(np.array(mapped, dtype=np.float64), path)


def _read_npz(path: Path) -> PointCloud:
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            if "sdf" in keys:
                raise SdfkitError(f"{path} holds SDF samples (from sdfkit prep), not a point cloud")
            if "points" not in keys:
                raise SdfkitError(f"{path}: a point-cloud .npz needs a 'points' array (n, 3), has {sorted(keys)}")
            points = data["points"]
            if points.ndim == 2:
                _check_count(points.shape[0], path)
            normals = data["normals"] if "normals" in keys else None
    except SdfkitError:
        raise
    except Exception as exc:  # zipfile, zlib and numpy raise many types for damaged files
        raise SdfkitError(f"cannot read point cloud {path}: not a valid .npz ({type(exc).__name__})") from None
    for name, array in (("points", points), ("normals", normals)):
        if array is not None and (array.ndim != 2 or array.shape[1] != 3 or array.dtype.kind not in "fiu"):
            raise SdfkitError(f"{path}: '{name}' must be a numeric (n, 3) array, got {array.dtype} {array.shape}")
    if normals is not None and len(normals) != len(points):
        raise SdfkitError(f"{path}: {len(points)} points but {len(normals)} normals")
    return PointCloud(np.asarray(points, dtype=np.float64),
                      None if normals is None else np.asarray(normals, dtype=np.float64))


def _read_las(path: Path) -> PointCloud:
    """A LAS or LAZ file's points, in its own (scaled and offset) coordinates; LAS holds no normals."""
    try:
        import laspy
    except ImportError:
        raise SdfkitError(f"cannot read point cloud {path}: .las and .laz files need laspy ({LAS_EXTRA})") from None
    try:
        with laspy.open(path) as reader:
            _check_count(int(reader.header.point_count), path)
            data = reader.read()
    except laspy.errors.LaspyException as exc:
        if path.suffix.lower() == ".laz" and "backend" in str(exc).lower():
            raise SdfkitError(f"cannot read point cloud {path}: .laz files need lazrs ({LAS_EXTRA})") from None
        raise SdfkitError(f"cannot read point cloud {path}: {str(exc).strip().splitlines()[0][:120]}") from None
    except (SdfkitError, PermissionError, MemoryError):
        raise  # reported by read_points
    except Exception as exc:  # laspy and lazrs raise many types for truncated or damaged files
        raise SdfkitError(f"cannot read point cloud {path}: not a valid LAS/LAZ file ({type(exc).__name__})") from None
    return PointCloud(np.stack([np.asarray(data.x), np.asarray(data.y), np.asarray(data.z)], axis=1).astype(np.float64))


def validate_cloud(cloud: PointCloud, name: str = "point cloud") -> PointCloud:
    """Refuse (one-line :class:`SdfkitError`) a cloud that cannot define a solid; return it with unit normals.

    Refused: no points, NaN or infinite coordinates or normals, fewer than :data:`MIN_POINTS` points, all points
    equal, all points on a plane or a line, normals of zero length.
    """
    points = cloud.points
    if len(points) == 0:
        raise SdfkitError(f"{name} holds no points")
    if not np.all(np.isfinite(points)):
        bad = int((~np.isfinite(points)).any(axis=1).sum())
        raise SdfkitError(f"{name} has {bad} points with NaN or infinite coordinates")
    if len(points) < MIN_POINTS:
        raise SdfkitError(f"{name} has only {len(points)} points (at least {MIN_POINTS} are needed)")
    centered = points - points.mean(axis=0)
    sv = np.linalg.svd(centered[:: max(1, len(centered) // 200_000)], compute_uv=False)
    if sv[0] <= 0:
        raise SdfkitError(f"{name}: all points coincide")
    if sv[-1] <= FLAT_TOLERANCE * sv[0]:
        raise SdfkitError(f"{name} is flat (all points on a plane or line): it has no inside")
    normals = cloud.normals
    if normals is not None:
        if not np.all(np.isfinite(normals)):
            raise SdfkitError(f"{name} has NaN or infinite normals")
        length = np.linalg.norm(normals, axis=1)
        if np.any(length < 1e-12):
            raise SdfkitError(f"{name} has {int((length < 1e-12).sum())} normals of zero length")
        normals = normals / length[:, None]
    return PointCloud(points, normals)


def read_points(path: str | Path) -> PointCloud:
    """Read and :func:`validate_cloud` a point-cloud file, in the input's own units.

    Parameters
    ----------
    path : a vertex-only ``.ply``, ``.xyz``, ``.pts``, ``.txt``, ``.npy``, ``.npz``, ``.las`` or ``.laz``.

    Returns
    -------
    PointCloud : points (n, 3) float64, normals (n, 3) unit float64 or None.
    """
    path = Path(path)
    if not path.exists():
        raise SdfkitError(f"point cloud file not found: {path}")
    if path.is_dir():
        raise SdfkitError(f"expected a point cloud file, got a directory: {path}")
    suffix = path.suffix.lower()
    if suffix not in POINT_SUFFIXES + (".ply",):
        raise SdfkitError(f"unsupported point cloud format '{path.suffix}' for {path}")
    try:
        if path.stat().st_size == 0:
            raise SdfkitError(f"point cloud file is empty (0 bytes): {path}")
        if suffix == ".ply":
            cloud = _read_ply(path)
        elif suffix == ".npy":
            cloud = _read_npy(path)
        elif suffix == ".npz":
            cloud = _read_npz(path)
        elif suffix in (".las", ".laz"):
            cloud = _read_las(path)
        else:
            cloud = _read_text(path)
    except PermissionError:
        raise SdfkitError(f"cannot read {path}: permission denied") from None
    except MemoryError:
        raise SdfkitError(f"{path}: out of memory while reading (subsample the cloud first)") from None
    except OSError as exc:
        raise SdfkitError(f"cannot read {path}: {exc.strerror}") from None
    return validate_cloud(cloud, name=str(path))


# ----------------------------------------------------------------------------------------- neighbourhoods


def neighbour_distances(points: np.ndarray, k: int) -> tuple[KDTree, np.ndarray, np.ndarray]:
    """KD-tree of (n, 3) ``points`` and each point's k nearest others: distances (n, k), indices (n, k)."""
    tree = KDTree(points)
    k = min(k, len(points) - 1)
    dist, idx = tree.query(points, k=k + 1, workers=-1)
    return tree, np.asarray(dist)[:, 1:], np.asarray(idx)[:, 1:]


def outlier_mask(mean_dist: np.ndarray, std: float) -> np.ndarray:
    """(n,) bool, True to keep: mean kNN distance within ``std`` standard deviations of the cloud's mean."""
    if std <= 0:
        return np.ones(len(mean_dist), dtype=bool)
    return mean_dist <= mean_dist.mean() + std * mean_dist.std()


def disc_areas(knn_dist: np.ndarray) -> np.ndarray:
    """(n,) area each point stands for: k points in a disc of radius r_k share ``pi r_k^2``."""
    k = knn_dist.shape[1]
    return np.pi * knn_dist[:, -1] ** 2 / k


def estimate_normals(points: np.ndarray, k: int) -> np.ndarray:
    """(n, 3) unit normals of the planes fitted to each point's k nearest neighbours; their sign is arbitrary."""
    idx, normals = pcu.estimate_point_cloud_normals_knn(np.ascontiguousarray(points, dtype=np.float64), k)
    out = np.zeros_like(points)
    out[np.asarray(idx).reshape(-1)] = normals
    missing = np.linalg.norm(out, axis=1) < 0.5
    out[missing] = [0.0, 0.0, 1.0]  # a point whose neighbourhood had no plane gets a placeholder; orientation fixes it
    return out


def neighbour_planes(points: np.ndarray, knn_idx: np.ndarray, cloud: np.ndarray | None = None) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """The least-squares plane through each point and its neighbours.

    points : (n, 3); knn_idx : (n, k) indices of each point's neighbours in ``cloud`` (m, 3) (default: points).
    Returns centroids (n, 3), unit normals (n, 3) of arbitrary sign, and spread (n,): the RMS distance of the
    k + 1 points from their plane (the square root of the covariance's smallest eigenvalue).
    """
    cloud = points if cloud is None else cloud
    centroids, normals, spread = np.empty_like(points), np.empty_like(points), np.empty(len(points))
    for start in range(0, len(points), CHUNK // 16):
        block = slice(start, start + CHUNK // 16)
        group = np.concatenate([points[block, None, :], cloud[knn_idx[block]]], axis=1)  # (b, k + 1, 3)
        center = group.mean(axis=1)
        offset = group - center[:, None, :]
        values, vectors = np.linalg.eigh(np.einsum("bki,bkj->bij", offset, offset) / group.shape[1])
        centroids[block], normals[block] = center, vectors[:, :, 0]
        spread[block] = np.sqrt(np.maximum(values[:, 0], 0.0))
    return centroids, normals, spread


def noise_ratio(spread: np.ndarray, knn_dist: np.ndarray) -> float:
    """Median off-plane spread (n,) over the median k-th-neighbour distance (from (n, k) ``knn_dist``)."""
    return float(np.median(spread) / max(float(np.median(knn_dist[:, -1])), 1e-300))


def widest_spread(points: np.ndarray, tree: KDTree, k: int) -> float:
    """The median off-plane spread of the widest denoising neighbourhoods (16 ``k`` points, :func:`denoise_neighbours`)
    over their median reach, on an even 2,000 of the (n, 3) ``points`` (``tree`` over them)."""
    probe = points[:: max(1, len(points) // 2000)]
    dist, idx = tree.query(probe, k=min(16 * k, len(points) - 1) + 1, workers=-1)
    dist, idx = np.asarray(dist), np.asarray(idx)
    _, _, spread = neighbour_planes(probe, idx[:, 1:], points)
    return float(np.median(spread) / max(float(np.median(dist[:, -1])), 1e-300))


def voxel_cells(points: np.ndarray, edge: float) -> tuple[np.ndarray, int]:
    """(n,) the cell of each of (n, 3) ``points`` in a grid of cubes of side ``edge`` from their minimum corner,
    numbered 0 to m - 1 over the m occupied cells; and m."""
    keys = np.floor((points - points.min(axis=0)) / edge).astype(np.int64)
    side = int(keys.max()) + 1
    _, cell = np.unique((keys[:, 0] * side + keys[:, 1]) * side + keys[:, 2], return_inverse=True)
    cell = cell.reshape(-1)
    return cell, int(cell.max()) + 1


def voxel_means(points: np.ndarray, edge: float) -> np.ndarray:
    """(m, 3) the mean of the (n, 3) ``points`` in each occupied cell of a grid of cubes of side ``edge``
    (:func:`voxel_cells`), in the cells' order."""
    cell, count = voxel_cells(points, edge)
    sums = np.stack([np.bincount(cell, points[:, j], minlength=count) for j in range(3)], axis=1)
    return sums / np.bincount(cell, minlength=count)[:, None]


def voxel_average(points: np.ndarray, target: int) -> np.ndarray:
    """About ``target`` points from (n, 3) ``points``: :func:`voxel_means` on a grid whose cubes' side is chosen so
    that about ``target`` cells are occupied."""
    # On a surface the occupied cells grow as 1 / side^2, within noise wider than the cells as 1 / side^3: the
    # square-root correction then overshoots by half and converges in a few more rounds.
    edge = float(np.ptp(points, axis=0).max()) / np.sqrt(target)
    for _ in range(8):
        cells = voxel_cells(points, edge)[1]
        if abs(cells - target) <= 0.05 * target:
            break
        edge *= float(np.sqrt(cells / target))
    return voxel_means(points, edge)


def thinning_order(n: int) -> np.ndarray:
    """(n,) a seeded permutation of ``range(n)``: a thinned cloud keeps a prefix of it, so each halving keeps a
    subset of the last and the same cloud thins the same way."""
    return np.random.default_rng(0).permutation(n)


def thin_dense_noise(points: np.ndarray, tree: KDTree, k: int) -> int | None:
    """How many of the (n, 3) ``points`` (``tree`` over them) stand for the cloud: half, a quarter, ... while the
    :func:`widest_spread` of the first that many of :func:`thinning_order` exceeds :data:`SATURATED_SPREAD` and
    no fewer than :data:`THINNED_FLOOR` would remain; None when it does not exceed it to begin with.

    A neighbourhood narrower than the noise holds a ball of it, whatever the surface does: its height field and
    plane are the noise's. The same number of neighbours among fewer points reaches further over the surface.
    """
    order = thinning_order(len(points))
    count, current = len(points), points
    while count // 2 >= THINNED_FLOOR and widest_spread(current, tree, k) > SATURATED_SPREAD:
        count //= 2
        current = points[np.sort(order[:count])]
        tree = KDTree(current)
    return count if count < len(points) else None


def thin_cloud(points: np.ndarray, normals: np.ndarray | None, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """About ``count`` points standing for the (n, 3) ``points`` (:func:`thin_dense_noise`), and their normals.

    With (n, 3) ``normals``, the first ``count`` of :func:`thinning_order`, each with its own normal. Without, the
    first ``2 count`` of it (or all n) averaged about in pairs on a voxel grid (:func:`voxel_average`): a pair's mean
    carries less noise than either point. With noise of 1% of the diagonal, a million points of the penguin and
    human_woman fitted so at Chamfer 9.297e-05 and 7.350e-05, IoU 0.9405 and 0.9148, against 1.102e-04 and
    8.080e-05, IoU 0.9251 and 0.8974, thinned alone; human_woman's 200,000 points at IoU 0.8713 against 0.8506
    (BENCHMARKS.md, "Noisy clouds denser than their noise: thinned"). Given normals are not averaged: a cell may
    hold points of both sides of a thin part, whose normals would cancel.
    """
    order = thinning_order(len(points))
    if normals is not None:
        kept = np.sort(order[:count])
        return points[kept], normals[kept]
    return voxel_average(points[np.sort(order[: 2 * count])], count), None


def _neighbourhood(points: np.ndarray, tree: KDTree, block: slice, k: int,
                   normals: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(b, k + 1) indices of each point of ``block`` (column 0) and its k nearest neighbours, and their (b, k + 1)
    0/1 weights: with ``normals``, a neighbour whose normal's cosine with the point's is at most
    :data:`FACING_MIN_COS` weighs 0. Asked per block: 1M x 257 indices at once would not fit."""
    knn_idx = np.asarray(tree.query(points[block], k=k + 1, workers=-1)[1])
    knn_idx[:, 0] = np.arange(block.start, block.start + len(knn_idx))  # the point itself, even among duplicates
    if normals is None:
        return knn_idx, np.ones(knn_idx.shape)
    weight = (np.einsum("bki,bi->bk", normals[knn_idx], normals[block]) > FACING_MIN_COS).astype(np.float64)
    weight[:, 0] = 1.0
    return knn_idx, weight


#: The exponents (of u, of v) of the quadratic height field's six terms: 1, u, v, u^2, u v, v^2.
QUADRIC_TERMS = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))


def quadric_normal_equations(u: np.ndarray, v: np.ndarray, h: np.ndarray,
                             weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The normal equations of each row's weighted least-squares fit of ``h = c0 + c1 u + c2 v + c3 u^2 + c4 u v +
    c5 v^2`` over its k points: (b, 6, 6) Gram matrix and (b, 6) right-hand side, from (b, k) ``u``, ``v``, ``h``
    and ``weight``.

    Built from the 15 weighted sums of u^a v^c (a + c <= 4) instead of a (b, k, 6) table of the terms: at a few
    hundred neighbours that table and its products were most of a denoising pass's time.
    """
    moments = _monomial_sums(weight, u, v, 4)
    moments_h = _monomial_sums(weight * h, u, v, 2)
    gram = np.stack([np.stack([moments[a + a2, c + c2] for a2, c2 in QUADRIC_TERMS], axis=-1)
                     for a, c in QUADRIC_TERMS], axis=-2)
    return gram, np.stack([moments_h[a, c] for a, c in QUADRIC_TERMS], axis=-1)


def _monomial_sums(source: np.ndarray, u: np.ndarray, v: np.ndarray, degree: int) -> dict[tuple[int, int], np.ndarray]:
    """{(a, c): (b,) sum over k of ``source`` u^a v^c} for a + c <= ``degree``; all arrays (b, k)."""
    sums = {}
    with_u = source
    for a in range(degree + 1):
        term = with_u
        for c in range(degree + 1 - a):
            sums[a, c] = term.sum(axis=1)
            if c < degree - a:
                term = term * v
        with_u = with_u * u
    return sums


def _height_fields(points: np.ndarray, tree: KDTree, k: int, normals: np.ndarray | None):
    """Per block of points: the quadratic height field fitted to each point and its k nearest neighbours.

    Yields ``(block, center, t1, t2, plane_normal, u, v, coef)``: the block's slice; (b, 3) the centroid of the
    point and its neighbours (those facing away from the point's given normal left out) and the frame of their
    least-squares plane; (b, k + 1) the coordinates in it of the point (column 0) and its neighbours; (b, 6) the
    coefficients of ``h(u, v) = c0 + c1 u + c2 v + c3 u^2 + c4 u v + c5 v^2``.
    """
    for start in range(0, len(points), CHUNK // 16):
        block = slice(start, start + CHUNK // 16)
        knn_idx, weight = _neighbourhood(points, tree, block, k, normals)
        group = points[knn_idx]  # (b, k + 1, 3), row 0: the point
        center = np.einsum("bk,bki->bi", weight, group) / weight.sum(axis=1, keepdims=True)
        offset = group - center[:, None, :]
        # The weighted scatter as a batched matrix product (BLAS); a three-operand einsum runs as one plain loop.
        _, vectors = np.linalg.eigh((offset * weight[..., None]).transpose(0, 2, 1) @ offset)
        plane_normal = vectors[:, :, 0]
        axis = np.where(np.abs(plane_normal[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        t1 = np.cross(plane_normal, axis)
        t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
        t2 = np.cross(plane_normal, t1)
        u, v, h = (np.einsum("bki,bi->bk", offset, t) for t in (t1, t2, plane_normal))
        gram, rhs = quadric_normal_equations(u, v, h, weight)
        coef = np.linalg.solve(gram + 1e-12 * np.eye(6), rhs[..., None])[..., 0]
        yield block, center, t1, t2, plane_normal, u, v, coef


def jet_project(points: np.ndarray, tree: KDTree, k: int, normals: np.ndarray | None = None) -> np.ndarray:
    """(n, 3) ``points`` moved onto the quadratic height field fitted to each point and its k nearest neighbours
    (:func:`jet_fit`)."""
    return jet_fit(points, tree, k, normals)[0]


def jet_fit(points: np.ndarray, tree: KDTree, k: int, normals: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) ``points`` moved onto the quadratic height field fitted to each point and its k nearest neighbours,
    and (n, 3) the unit normals, of arbitrary sign, of the neighbourhoods' least-squares planes (the fields' frames).

    tree : the KD-tree of ``points``. In the frame of the neighbourhood's least-squares plane the height
    ``h(u, v) = c0 + c1 u + c2 v + c3 u^2 + c4 u v + c5 v^2`` is fitted by least squares, and the point is
    replaced by ``(u, v, h(u, v))``: noise across the surface is averaged away, its curvature is kept (a plane
    would flatten it).

    normals : (n, 3) oriented unit normals the cloud came with, or None. Given, a neighbour whose normal's cosine
    with the point's is at most :data:`FACING_MIN_COS` (it turns more than 60 degrees) takes no part in either fit:
    it lies on the far side of a thin part (a limb, a fin) or across a crease, and would pull the fit through the
    solid.

    The planes span the denoising neighbourhood, several times the noise, so they follow the surface where the
    planes of a few nearest neighbours follow the noise: a noisy cloud without normals takes them as its normals
    (:func:`orient_cloud`). Oriented, they turn 0.87-1.0 of the normals of 100,000 points with noise of 1% of the
    diagonal the right way on the five val meshes, where the 16-neighbour planes turned 0.49-0.55, about as many
    as chance (``benchmarks/results/noisy_normals-*``).
    """
    out, planes = np.empty_like(points), np.empty_like(points)
    for block, center, t1, t2, plane_normal, u, v, coef in _height_fields(points, tree, k, normals):
        height = coef[:, 0] + coef[:, 1] * u[:, 0] + coef[:, 2] * v[:, 0] + coef[:, 3] * u[:, 0] ** 2 \
            + coef[:, 4] * u[:, 0] * v[:, 0] + coef[:, 5] * v[:, 0] ** 2
        out[block] = center + u[:, :1] * t1 + v[:, :1] * t2 + height[:, None] * plane_normal
        planes[block] = plane_normal
    return out, planes


def unshrink(noisy: np.ndarray, projected: np.ndarray, k: int, normals: np.ndarray,
             facing: bool) -> np.ndarray:
    """(n, 3) ``projected`` (:func:`jet_project` of (n, 3) ``noisy``) moved out by the shift the noise gave it.

    A height field fitted to points with noise of deviation s across the surface as well as along it lies about
    ``H s^2`` inside the surface, H the mean curvature: where the surface bends away, a neighbour's noisy ``u``
    pairs it with the height of a point further out from the centre (errors in the variables). It shrinks every
    convex part; on a torus with noise of 1% of its diagonal it is half the denoised points' mean squared error
    (``benchmarks/results/points_denoise-unshrink.md``). The curvature is read from the quadratic fits over the
    projected points (their noise is small enough not to flatten it), averaged over the k neighbours, and s from the
    median distance of the noisy points from the projected ones along the plane normals; no point moves further
    than :data:`UNSHRINK_MAX_HS` times s. The shift grows with the neighbourhood beyond ``H s^2``; that part stays.

    normals : (n, 3) oriented normals, which give the fits' normals one side; facing : leave out the neighbours
    facing away from a point (as :func:`jet_project` with given normals does).
    """
    tree = KDTree(projected)
    side = np.empty((len(projected), 3))
    bend = np.empty(len(projected))
    for block, _, _, _, plane_normal, _, _, coef in _height_fields(projected, tree, k, normals if facing else None):
        sign = np.where(np.einsum("bi,bi->b", plane_normal, normals[block]) < 0, -1.0, 1.0)
        side[block] = plane_normal * sign[:, None]
        bend[block] = (coef[:, 3] + coef[:, 5]) * sign  # -H along the outward side
    # One fit's curvature is noisy; the shift is smooth over a neighbourhood, so it is averaged over one (asked
    # again: keeping every block's neighbours from the fits would hold n x (k + 1) indices).
    smooth = np.empty_like(bend)
    for start in range(0, len(projected), CHUNK // 16):
        block = slice(start, start + CHUNK // 16)
        knn_idx, weight = _neighbourhood(projected, tree, block, k, normals if facing else None)
        smooth[block] = np.einsum("bk,bk->b", weight, bend[knn_idx]) / weight.sum(axis=1)
    along = np.einsum("ij,ij->i", noisy - projected, side)
    sigma = 1.4826 * float(np.median(np.abs(along)))
    # H s^2 is a small-noise estimate: where a bend is nearly as tight as the noise is wide (H s beyond
    # UNSHRINK_MAX_HS) it no longer holds, and the few points there would be pushed off the surface.
    shift = np.clip(-smooth * sigma**2, -UNSHRINK_MAX_HS * sigma, UNSHRINK_MAX_HS * sigma)
    return projected + shift[:, None] * side


def denoise_neighbours(tree: KDTree, points: np.ndarray, spread: np.ndarray, k: int) -> int:
    """Neighbours per height-field fit: the fewest of 2k, 4k, 8k, 16k reaching :data:`DENOISE_REACH` times the
    median off-plane spread (n,) of the k-neighbour planes.

    Too few neighbours follow the noise (and six coefficients from k + 1 points do, so at least 2k), too many
    flatten the shape; the spread of the k-neighbour planes scales with the noise.
    """
    reach = DENOISE_REACH * float(np.median(spread))
    probe = points[:: max(1, len(points) // 2000)]
    for count in (2 * k, 4 * k, 8 * k, 16 * k):
        count = min(count, len(points) - 1)
        if float(np.median(tree.query(probe, k=count + 1, workers=-1)[0][:, -1])) >= reach or count == len(points) - 1:
            return count
    return count


def orient_normals(points: np.ndarray, normals: np.ndarray, knn_idx: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Flip (n, 3) ``normals`` to agree along a minimum spanning tree, then face outwards per connected part.

    The tree is over the kNN graph (``knn_idx`` (n, k)) with weights ``1 - |n_i . n_j|``: propagation crosses the
    flattest neighbourhoods first (Hoppe et al. 1992). A part's outward side is the one giving it a positive
    enclosed volume ``1/3 sum a_i (p_i - c) . n_i``.
    """
    n, k = knn_idx.shape
    rows = np.repeat(np.arange(n), k)
    cols = knn_idx.reshape(-1)
    step = points[cols] - points[rows]
    step /= np.maximum(np.linalg.norm(step, axis=1, keepdims=True), 1e-300)
    # Hoppe's 1 - |n_i . n_j|, plus how far each step leaves the two tangent planes: across a thin wall the
    # normals are parallel too, but the step runs along them. (0 weights would mean "no edge".)
    weight = (1.0 - np.abs(np.einsum("ij,ij->i", normals[rows], normals[cols]))
              + np.abs(np.einsum("ij,ij->i", step, normals[rows])) + np.abs(np.einsum("ij,ij->i", step, normals[cols]))
              + 1e-6)
    graph = coo_matrix((weight, (rows, cols)), shape=(n, n)).tocsr()
    graph = graph.maximum(graph.T)
    tree = minimum_spanning_tree(graph)
    tree = tree + tree.T
    parts, labels = connected_components(tree, directed=False)
    # One root per part, joined to a virtual node, so that one traversal reaches every part.
    roots = np.unique(labels, return_index=True)[1]
    virtual = coo_matrix((np.ones(parts), (np.full(parts, n), roots)), shape=(n + 1, n + 1)).tocsr()
    full = (coo_matrix((tree.data, tree.nonzero()), shape=(n + 1, n + 1)).tocsr() + virtual)
    order, parent = breadth_first_order(full, n, directed=False, return_predecessors=True)
    sign = np.ones(n + 1)
    agree = np.ones(n + 1)
    child = order[1:]
    par = parent[child]
    real = par < n
    agree[child[real]] = np.sign(np.einsum("ij,ij->i", normals[child[real]], normals[par[real]]))
    agree[agree == 0] = 1.0
    sign_list, agree_list, parent_list = sign.tolist(), agree.tolist(), parent.tolist()
    for c in child.tolist():  # parents precede children in breadth-first order
        p = parent_list[c]
        sign_list[c] = (sign_list[p] if p < n else 1.0) * agree_list[c]
    oriented = normals * np.asarray(sign_list[:n])[:, None]
    centers = np.zeros((parts, 3))
    np.add.at(centers, labels, points)
    centers /= np.bincount(labels, minlength=parts)[:, None]
    volume = np.bincount(labels, weights=areas * np.einsum("ij,ij->i", points - centers[labels], oriented),
                         minlength=parts)
    return oriented * np.where(volume[labels] < 0, -1.0, 1.0)[:, None]


# ------------------------------------------------------------------------------------------- signed distance


def nearest_points(points: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (q,) float64 from each of (q, 3) ``queries`` to its nearest of (n, 3) ``points``, and that point's
    index (q,) int64.

    point-cloud-utils' tree (nanoflann), not scipy's: scipy's searched queries far from a surface cloud (the
    uniform volume samples) many times slower (``benchmarks/results/cloud_prep-*.md``).
    """
    dist, nearest = pcu.k_nearest_neighbors(np.ascontiguousarray(queries, dtype=np.float64),
                                            np.ascontiguousarray(points, dtype=np.float64), 1)
    return np.asarray(dist, dtype=np.float64).reshape(-1), np.asarray(nearest, dtype=np.int64).reshape(-1)


def winding_number(points: np.ndarray, normals: np.ndarray, areas: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(q,) fast winding number of an oriented cloud at (q, 3) ``queries``: about 1 inside, 0 outside."""
    p = np.ascontiguousarray(points, dtype=np.float64)
    nrm = np.ascontiguousarray(normals, dtype=np.float64)
    a = np.ascontiguousarray(areas, dtype=np.float64).reshape(-1, 1)
    q = np.ascontiguousarray(queries, dtype=np.float64)
    out = np.empty(len(q))
    for start in range(0, len(q), WINDING_CHUNK):
        chunk = q[start : start + WINDING_CHUNK]
        out[start : start + WINDING_CHUNK] = np.asarray(pcu.point_cloud_fast_winding_number(p, nrm, a, chunk))
    return out


@dataclasses.dataclass
class WindingCloud:
    """The oriented points whose fast winding number gives the signs: the cloud itself, or an even subsample of it.

    points, normals : (m, 3) float64; areas : (m,) disc areas within the subsample; near : the distance from the
    whole cloud within which the sign comes from the nearest point's tangent plane instead (0: the winding number
    decides everywhere).
    """

    points: np.ndarray
    normals: np.ndarray
    areas: np.ndarray
    near: float = 0.0
    coarse: WindingCloud | None = None
    """An even subsample whose winding number serves the queries farther than ``beyond`` from the cloud."""
    beyond: float = np.inf

    def winding(self, queries: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """(q,) winding numbers at (q, 3) ``queries`` lying (q,) ``dist`` from the whole cloud: through
        :attr:`coarse` beyond :attr:`beyond`, through these points nearer."""
        if self.coarse is None:
            return winding_number(self.points, self.normals, self.areas, queries)
        out = np.empty(len(queries))
        far = dist > self.beyond
        for part, cloud in ((far, self.coarse), (~far, self)):
            if part.any():
                out[part] = winding_number(cloud.points, cloud.normals, cloud.areas, queries[part])
        return out

    def with_coarse(self, most: int, neighbours: int, seed: int = 0) -> WindingCloud:
        """These points, with :attr:`coarse` ``most`` of them drawn evenly (seeded), their discs sized over their
        own ``neighbours`` nearest, serving the queries beyond :data:`COARSE_REACH` of their median disc radii;
        unchanged when there are fewer than twice ``most`` points (or ``most`` is 0).

        A query's winding number sums over every point, but the kernel's tree spends most of its time on the
        points next to the query; far from the cloud a coarser cloud's sum gives the same sign, from a smaller tree.
        """
        if most <= 0 or len(self.points) < 2 * most:
            return self
        coarse = WindingCloud.of(self.points, self.normals, self.areas, most, neighbours, seed=seed)
        beyond = COARSE_REACH * float(np.sqrt(np.median(coarse.areas) / np.pi))
        return dataclasses.replace(self, coarse=coarse, beyond=beyond)

    @classmethod
    def of(cls, points: np.ndarray, normals: np.ndarray, areas: np.ndarray, most: int, neighbours: int,
           reach: float = TANGENT_REACH, seed: int = 0) -> WindingCloud:
        """The whole cloud when it has at most ``most`` points, else ``most`` of them drawn evenly (seeded), their
        discs sized over the subsample's own ``neighbours`` nearest points. ``near`` is ``reach`` median disc
        radii of the whole cloud, and at least the subsample's median disc radius.

        On the million-point penguin and human_woman, 250,000 queries of the sampler's kind get the mesh's own sign
        as often either way: 0.022% and 0.050% of them differ with 100,000 points and the tangent planes, 0.036% and
        0.041% through the whole cloud, 0.187% and 0.246% through the subsample alone
        (``benchmarks/results/winding_subsample-20261206.md``).
        """
        near = reach * float(np.sqrt(np.median(areas) / np.pi))
        if len(points) <= most:
            return cls(points, normals, areas, near)
        pick = np.sort(np.random.default_rng(seed).choice(len(points), size=most, replace=False))
        _, dist, _ = neighbour_distances(points[pick], neighbours)
        sub_areas = disc_areas(dist)
        return cls(points[pick], normals[pick], sub_areas, max(near, float(np.sqrt(np.median(sub_areas) / np.pi))))


@dataclasses.dataclass
class OrientedCloud:
    """A cleaned, oriented cloud in the unit frame with what distances and signs need.

    points, normals : (n, 3) float64; areas, radius : (n,) disc area and radius per point; normals_source :
    ``given`` or ``estimated``; outliers : points dropped; noise : the cloud's
    :func:`noise_ratio` as read; denoised : whether the points were moved onto their neighbourhoods'
    quadratic height fields (:func:`jet_project`, then :func:`unshrink`); winding : what gives the signs (None:
    the whole cloud); thinned : whether the noisy cloud was first thinned (:func:`thin_dense_noise`,
    :func:`thin_cloud`).
    """

    points: np.ndarray
    normals: np.ndarray
    areas: np.ndarray
    radius: np.ndarray
    normals_source: str
    outliers: int
    noise: float = 0.0
    denoised: bool = False
    winding: WindingCloud | None = None
    thinned: bool = False

    @property
    def signs(self) -> WindingCloud:
        return self.winding if self.winding is not None else WindingCloud(self.points, self.normals, self.areas)

    def sdf(self, queries: np.ndarray) -> np.ndarray:
        """(q,) float32 signed distance estimates at (q, 3) ``queries``, negative inside (:func:`signed_distance`)."""
        return signed_distance(self, queries)[0].astype(np.float32)


def orient_cloud(cloud: PointCloud, config: PointsConfig) -> OrientedCloud:
    """Drop outliers, estimate and orient normals where needed, and compute disc areas (see the module notes)."""
    if config.normals == "given" and cloud.normals is None:
        raise SdfkitError("--normals given: the point cloud has no normals (nx ny nz)")
    points = cloud.points
    _, dist, _ = neighbour_distances(points, config.neighbours)
    keep = outlier_mask(dist.mean(axis=1), config.outlier_std)
    if keep.sum() < MIN_POINTS:
        raise SdfkitError(f"only {int(keep.sum())} points remain after removing outliers (at least {MIN_POINTS})")
    points = points[keep]
    given = cloud.normals[keep] if cloud.normals is not None and config.normals != "estimate" else None
    tree, dist, idx = neighbour_distances(points, config.neighbours)
    centroids, plane_normals, spread = neighbour_planes(points, idx)
    noise = noise_ratio(spread, dist)
    denoised = config.denoise == "on" or (config.denoise == "auto" and noise > NOISE_RATIO)
    thin_to = thin_dense_noise(points, tree, config.neighbours) if denoised and config.thin_noise else None
    if thin_to is not None:
        points, given = thin_cloud(points, given, thin_to)
        tree, dist, idx = neighbour_distances(points, config.neighbours)
        centroids, plane_normals, spread = neighbour_planes(points, idx)
    # Noisy points bias the distances and signs of the samples near them (each point's own disc decides the side
    # next to it): both use the points moved onto their neighbourhoods' height fields, of this many neighbours.
    count = denoise_neighbours(tree, points, spread, config.neighbours) if denoised else 0
    projected = None
    if given is not None:
        normals, source = given, "given"
    else:
        # Orientation propagates best over the points on their k-neighbour planes (0.99 of the penguin's normals
        # right at noise 0.005, against 0.95 over the height-field points below and 0.96 over the noisy ones);
        # the oriented normals carry over point by point. A noisy cloud's normals are the planes of its
        # height fields: over k neighbours the noise turns the plane (:func:`jet_fit`).
        frame, frame_dist, frame_idx = points, dist, idx
        if denoised:
            frame = points - np.einsum("ij,ij->i", points - centroids, plane_normals)[:, None] * plane_normals
            _, frame_dist, frame_idx = neighbour_distances(frame, config.neighbours)
            projected, unoriented = jet_fit(points, tree, count)
        else:
            unoriented = estimate_normals(frame, config.neighbours)
        normals = orient_normals(frame, unoriented, frame_idx, disc_areas(frame_dist))
        source = "estimated"
    if denoised:
        if source == "given":
            count = min(FACING_NEIGHBOUR_FACTOR * count, len(points) - 1)
            # Over estimated normals the shift helped five clouds of eight measured and hurt the rest
            # (benchmarks/results/points_denoise-unshrink.md): only given normals move the points back out.
            projected = jet_project(points, tree, count, normals)
            points = unshrink(points, projected, count, normals, facing=True)
        else:
            assert projected is not None  # fitted with the normals above
            points = projected
        _, dist, _ = neighbour_distances(points, config.neighbours)
    areas = disc_areas(dist)
    # A denoised cloud's points still scatter about its surface: next to them the winding number, a sum over many
    # points, signs better than the nearest one's tangent plane.
    reach = 0.0 if denoised else config.tangent_reach
    winding = WindingCloud.of(points, normals, areas, config.winding_points, config.neighbours, reach).with_coarse(
        config.coarse_winding_points, config.neighbours)
    return OrientedCloud(points, normals, areas, np.sqrt(areas / np.pi), source, int((~keep).sum()), round(noise, 4),
                         denoised, winding, thin_to is not None)


def signed_distance(cloud: OrientedCloud, queries: np.ndarray, winding_at: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed distance estimates at (q, 3) ``queries``, negative inside (see the module notes).

    winding_at : (q,) bool, queries whose winding number is wanted even where the tangent plane gives the sign
        (:func:`sign_trust`'s check); all of them go to the kernel in one call, which builds its tree once.

    Returns
    -------
    sdf : (q,) float64
    winding : (q,) float64 winding number; NaN where the tangent plane gave the sign and ``winding_at`` is False
    normal_side : (q,) float64, +1 / -1: the side of the nearest point's tangent plane (a second, local sign)
    """
    queries = np.asarray(queries, dtype=np.float64)
    dist, nearest = nearest_points(cloud.points, queries)
    offset = queries - cloud.points[nearest]
    along = np.einsum("ij,ij->i", offset, cloud.normals[nearest])
    unsigned = np.maximum(np.abs(along), dist - cloud.radius[nearest])
    signs = cloud.signs
    far = dist > signs.near if signs.near > 0 else np.ones(len(queries), dtype=bool)
    wanted = far if winding_at is None else far | winding_at
    winding = np.full(len(queries), np.nan)
    if wanted.any():
        winding[wanted] = signs.winding(queries[wanted], dist[wanted])
    inside = np.where(far, winding > 0.5, along < 0)
    return np.where(inside, -unsigned, unsigned), winding, np.where(along < 0, -1.0, 1.0)


def sign_trust(winding: np.ndarray, normal_side: np.ndarray, near: np.ndarray) -> dict[str, float]:
    """How far the signs can be trusted, for the report, from the samples whose ``winding`` number is given (not
    NaN): every sample where the winding number signs them all, else an even share of them (:func:`sample_cloud`).

    ambiguous : share of samples whose winding number lies in [0.25, 0.75] (neither clearly inside nor outside);
    normal_disagreement : share of near-surface samples (``near`` (q,) bool) where the winding-number sign and
    the side of the nearest point's tangent plane differ.
    """
    known = ~np.isnan(winding)
    winding, normal_side, near = winding[known], normal_side[known], near[known]
    ambiguous = float(np.mean((winding > 0.25) & (winding < 0.75))) if len(winding) else 0.0
    side = np.where(winding > 0.5, -1.0, 1.0)
    disagree = float(np.mean(side[near] != normal_side[near])) if near.any() else 0.0
    return {"ambiguous": ambiguous, "normal_disagreement": disagree}


# --------------------------------------------------------------------------------------------------- sampling


def cloud_normalization(points: np.ndarray, radius: float = 1.0) -> Normalization:
    """As :func:`data_prep.mesh.fit_normalization` for meshes: bounding-box centre to the origin, farthest point
    at ``radius``; ``points`` (n, 3)."""
    points = np.asarray(points, dtype=np.float64)
    center = (points.min(axis=0) + points.max(axis=0)) / 2.0
    farthest = float(np.linalg.norm(points - center, axis=1).max())
    if not np.isfinite(farthest) or farthest <= 0 or not radius > 0:
        raise SdfkitError("point cloud has zero extent")
    return Normalization(center=(float(center[0]), float(center[1]), float(center[2])), scale=farthest / radius)


def sample_positions(points: np.ndarray, config, rng: np.random.Generator) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """Where a cloud's SDF samples go (:func:`sample_cloud`), drawn from ``rng``: base (m, 3) cloud points of
    (n, 3) ``points`` for the near-surface samples, near (m, 3) those points offset by the noise scales of
    ``config`` (a :class:`data_prep.sampling.SamplingConfig`), and volume (num_points - m, 3) uniform in the
    cloud's padded box."""
    from data_prep.sampling import sample_volume

    n_near = int(round(config.num_points * config.near_fraction))
    base = points[rng.integers(len(points), size=n_near)]
    weights = np.asarray(config.noise_weights) / np.sum(config.noise_weights)
    scale = np.asarray(config.noise_stds)[rng.choice(len(weights), size=n_near, p=weights)]
    near = base + rng.normal(size=(n_near, 3)) * scale[:, None]
    lo, hi = points.min(axis=0), points.max(axis=0)
    volume = sample_volume(config.num_points - n_near, config.volume, lo - config.bbox_padding,
                           hi + config.bbox_padding, 1.0, rng)
    return base, near, volume


def sample_cloud(cloud: OrientedCloud, config, points_config: PointsConfig) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """SDF samples of an oriented cloud already in the unit frame, laid out as :func:`sampling.sample_mesh`'s.

    ``config`` is a :class:`data_prep.sampling.SamplingConfig`. Near-surface samples are cloud points (a
    ``surface_fraction`` of them kept on the points with distance 0, the rest offset by the config's noise
    scales); the rest are uniform in the volume.

    Returns points (n, 3) float32, sdf (n,) float32 (negative inside), surface_points and surface_normals
    (m, 3) float32, and the sign-trust figures of :func:`sign_trust`.
    """
    rng = np.random.default_rng(config.seed)
    surface = rng.choice(len(cloud.points), size=config.num_surface, replace=len(cloud.points) < config.num_surface)
    base, near, volume = sample_positions(cloud.points, config, rng)
    n_near = len(near)
    n_on = int(round(n_near * points_config.surface_fraction))
    queries = np.concatenate([near[n_on:], volume])
    check = None
    if cloud.signs.near > 0:  # tangent planes sign the samples next to the cloud: the trust check takes an even share
        check = np.zeros(len(queries), dtype=bool)
        check[rng.choice(len(queries), size=min(TRUST_SAMPLES, len(queries)), replace=False)] = True
    sdf, winding, side = signed_distance(cloud, queries, winding_at=check)
    near_samples = np.arange(len(queries)) < n_near - n_on
    trust = sign_trust(winding if check is None else np.where(check, winding, np.nan), side, near_samples)
    points = np.concatenate([base[:n_on], queries])
    sdf = np.concatenate([np.zeros(n_on), sdf])
    return (points.astype(np.float32), sdf.astype(np.float32), cloud.points[surface].astype(np.float32),
            cloud.normals[surface].astype(np.float32), trust)


def points_settings(config, points_config: PointsConfig) -> dict:
    """The JSON-plain settings stored with a cloud's samples: the sampling settings and ``points``."""
    from data_prep.sampling import config_settings

    return {**config_settings(config), "points": dataclasses.asdict(points_config)}


def prepare_points(path: str | Path, config, points_config: PointsConfig | None = None,
                   cloud: PointCloud | None = None):
    """Read, clean, normalise, orient and sample the cloud at ``path``.

    Parameters
    ----------
    path : a point-cloud file (:func:`read_points`).
    config : the sampling settings (:class:`data_prep.sampling.SamplingConfig`).
    points_config : normals, neighbours, outliers, on-surface share.
    cloud : the cloud already read from ``path`` (not read again).

    Returns
    -------
    samples : :class:`data_prep.sampling.SdfSamples`, as a mesh's.
    info : what was done, for the report: points read and used, outliers dropped, normals given or estimated,
        noise and denoising, sign trust, and how gaps are treated.
    oriented : the cleaned, oriented cloud in the unit frame (its :meth:`OrientedCloud.sdf` feeds the encoder).
    """
    from data_prep.sampling import SdfSamples

    path = Path(path)
    points_config = points_config or PointsConfig()
    cloud = cloud if cloud is not None else read_points(path)
    norm = cloud_normalization(cloud.points, config.radius)
    unit = PointCloud(norm.to_unit(cloud.points), cloud.normals)
    oriented = orient_cloud(unit, points_config)
    points, sdf, surface_points, surface_normals, trust = sample_cloud(oriented, config, points_config)
    settings = points_settings(config, points_config)
    samples = SdfSamples(points, sdf, surface_points, surface_normals, norm, str(path.resolve()), file_hash(path),
                         settings)
    info = {
        "points_read": int(len(cloud.points)),
        "outliers_removed": oriented.outliers,
        "normals": oriented.normals_source,
        "noise_ratio": oriented.noise,
        "denoised": oriented.denoised,
        "points_thinned_to": len(oriented.points) if oriented.thinned else None,
        "sign_trust": trust,
        "gaps": "closed: a missing region is bridged by the winding number's 1/2 level set",
        "distance": "max(distance to the nearest point's tangent plane, distance to the nearest point - its disc "
                    "radius)",
    }
    return samples, info, oriented
