"""The receipt's QR code fills its square on the box's own Kivy (Debian 12's 2.1), not only on
the venv's: on 2.1 an Image ignores fit_mode and drew one pixel per module, too small to scan."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("qr_on_debian_kivy.py")


def test_the_receipt_qr_fills_its_square_on_debian_kivy(tmp_path: Path) -> None:
    shot = tmp_path / "qr.png"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KIVY_HOME": str(tmp_path / "kivy")}
    done = subprocess.run(
        ["/usr/bin/python3", str(SCRIPT), str(ROOT), str(shot)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["kivy"].startswith("2.1")
    left, top, right, bottom = result["light_box"]
    assert right - left >= 330 and bottom - top >= 330, result
