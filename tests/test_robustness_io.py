"""Disk full, read-only outputs, bad checkpoints and the security checks of the robustness suite.

Root ignores file permissions, so a full disk or a read-only folder is simulated at the operating-system call
(``os.fsync``, ``os.replace``, ``tempfile.mkstemp``/``mkdtemp`` raising the errno the kernel would).
"""

from __future__ import annotations

import errno
import http.client
import io
import os
import pathlib
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from sdfkit.errors import SdfkitError
from sdfkit.io import atomic_write_bytes

from corpus import assert_one_line_error, base_sphere, run_cli

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "sdfkit" / "pretrained" / "decoder.pt"
DISK_FULL = "no space left on device"
READ_ONLY = "permission denied or read-only location"


def failing(err: int):
    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    return fail


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("call", ["fsync", "replace"])
def test_disk_full(tmp_path, monkeypatch, call):
    target = tmp_path / "out.bin"
    monkeypatch.setattr(os, call, failing(errno.ENOSPC))
    with pytest.raises(SdfkitError) as info:
        atomic_write_bytes(target, b"x" * 1000)
    assert str(info.value) == f"{DISK_FULL} while writing {target}"
    assert leftovers(tmp_path) == []


def test_disk_full_through_commands(tmp_path, monkeypatch):
    mesh = tmp_path / "ball.obj"
    base_sphere().export(mesh)
    monkeypatch.setattr(os, "replace", failing(errno.ENOSPC))
    out = tmp_path / "out"
    code, _, err = run_cli("mesh", "--exact", str(mesh), str(out / "m.ply"), "--resolution", "24")
    assert_one_line_error(code, err, DISK_FULL)
    code, _, err = run_cli("eval", str(mesh), str(mesh), "--json", str(out / "m.json"),
                           "--surface-points", "500", "--volume-points", "2000")
    assert_one_line_error(code, err, DISK_FULL)
    code, _, err = run_cli("prep", str(mesh), "--out", str(out / "samples"), "--points", "2000", "--workers", "1",
                           "--quiet")
    assert_one_line_error(code, err, DISK_FULL)
    assert [p for p in out.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("err", [errno.EROFS, errno.EACCES])
def test_read_only(tmp_path, monkeypatch, err):
    target = tmp_path / "sub" / "out.bin"
    monkeypatch.setattr(tempfile, "mkstemp", failing(err))
    with pytest.raises(SdfkitError, match=READ_ONLY):
        atomic_write_bytes(target, b"data")
    monkeypatch.undo()
    monkeypatch.setattr(os, "replace", failing(err))
    with pytest.raises(SdfkitError, match=READ_ONLY):
        atomic_write_bytes(target, b"data")
    assert leftovers(target.parent) == []


def test_fit_into_a_read_only_folder(tmp_path, monkeypatch):
    """The output folder cannot be created when the fit is done: one line, nothing left beside it."""
    mesh = tmp_path / "ball.obj"
    base_sphere().export(mesh)
    monkeypatch.setattr(tempfile, "mkdtemp", failing(errno.EROFS))
    out = tmp_path / "fit"
    code, _, err = run_cli("fit", str(mesh), "--out", str(out), "--steps", "5", "--resolution", "32",
                           "--grid-resolution", "8", "--no-preview", "--quiet")
    assert_one_line_error(code, err, READ_ONLY)
    assert leftovers(tmp_path) == ["ball.obj"]


class _Payload:
    """Unpickling this creates the file MARKER: a checkpoint must never be able to run code."""

    marker: Path

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def bad_checkpoints(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file content, text of the one-line error)."""
    shipped = SHIPPED.read_bytes()
    payload = _Payload()
    payload.marker = marker
    return {
        "random_bytes": (os.urandom(4096), "not a valid sdfkit file"),
        "truncated": (shipped[: len(shipped) // 2], "not a valid sdfkit file"),
        "empty": (b"", "not a valid sdfkit file"),
        "foreign": (_torch_bytes({"weights": torch.zeros(3)}), "not an sdfkit file"),
        "sdfkit_not_a_dict": (_torch_bytes({"sdfkit": "latents"}), "not an sdfkit file"),
        "pickled_object": (_torch_bytes({"sdfkit": {"kind": "latents"}, "obj": payload}), "not a valid sdfkit file"),
    }


@pytest.mark.parametrize("command", ["mesh", "view", "train --resume", "fit --decoder"])
def test_bad_checkpoint(tmp_path, command):
    marker = tmp_path / "code-was-run"
    mesh = tmp_path / "ball.obj"
    base_sphere().export(mesh)
    config = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    config["train"]["data"] = [str(mesh)]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    for name, (content, message) in bad_checkpoints(marker).items():
        folder = tmp_path / name
        folder.mkdir()
        file = folder / ("checkpoint.pt" if command.startswith("train") else "latents.pt")
        file.write_bytes(content)
        out = tmp_path / "out"
        args = {
            "mesh": ("mesh", str(folder), str(out / "m.ply")),
            "view": ("view", str(folder)),
            "train --resume": ("train", str(tmp_path / "tiny.yaml"), "--out", str(folder), "--resume", "--device", "cpu"),
            "fit --decoder": ("fit", str(mesh), "--out", str(out), "--decoder", str(file), "--quiet"),
        }[command]
        code, _, err = run_cli(*args)
        assert_one_line_error(code, err, message)
        assert str(file) in err
        assert not out.exists(), name
        assert leftovers(folder) == [file.name], name
    assert not marker.exists(), "loading a checkpoint ran code from it"


def test_viewer_serves_no_path_traversal(tmp_path):
    """Only the viewer's own client files are served: no way out through ``..``, encodings or absolute paths."""
    from viewer.server import SliceViewer
    from viewer.sources import exact_source

    secret = tmp_path / "secret.txt"
    secret.write_text("sdfkit-secret-token")
    mesh = tmp_path / "ball.obj"
    base_sphere().export(mesh)
    viewer = SliceViewer(exact_source(mesh), resolution=64)
    try:
        assert viewer.host == "127.0.0.1"
        rel = str(secret).lstrip("/")
        probes = ["/" + "../" * 12 + rel, "/" + "%2e%2e/" * 12 + rel, "/" + "..%2f" * 12 + rel.replace("/", "%2f"),
                  "//" + rel, "/" + str(secret), "/..\\..\\..\\" + rel.replace("/", "\\"), "/%00/" + rel]
        for probe in probes:
            conn = http.client.HTTPConnection(viewer.host, viewer.port, timeout=10)
            conn.request("GET", probe)  # sent as is: no client-side normalisation of the path
            body = conn.getresponse().read()
            conn.close()
            assert b"sdfkit-secret-token" not in body, probe
    finally:
        viewer.stop()


def test_view_binds_localhost_by_default():
    import inspect

    from sdfkit.cli.view import view

    assert inspect.signature(view).parameters["host"].default == "127.0.0.1"


def test_yaml_tags_are_not_constructed(tmp_path):
    marker = tmp_path / "constructed"
    config = tmp_path / "evil.yaml"
    config.write_text(f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n")
    code, _, err = run_cli("train", str(config), "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, "cannot parse config")
    code, _, err = run_cli("prep", str(tmp_path), "--config", str(config), "--out", str(tmp_path / "s"))
    assert_one_line_error(code, err, "cannot parse config")
    assert not marker.exists() and not (tmp_path / "run").exists() and not (tmp_path / "s").exists()
