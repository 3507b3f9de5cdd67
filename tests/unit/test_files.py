"""atomic_write: whole or not at all, with the mode asked for."""
from __future__ import annotations

import stat

import pytest

from Core.files import atomic_write


def test_a_failure_inside_the_block_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "unit.service"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path, text=True) as out:
        out.write("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["unit.service"]


def test_the_file_gets_its_mode_and_its_folders(tmp_path):
    path = tmp_path / "state" / "api-key"
    with atomic_write(path, mode=0o600, text=True) as out:
        out.write("secret\n")
    assert path.read_text() == "secret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with atomic_write(tmp_path / "out.wav") as out:
        out.write(b"RIFF")
    assert stat.S_IMODE((tmp_path / "out.wav").stat().st_mode) == 0o644
