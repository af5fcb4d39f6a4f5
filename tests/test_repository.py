"""The repository holds source and text only: no wheels, archives or compiled binaries."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHIVES = (".whl", ".egg", ".zip", ".tar", ".tar.gz", ".tgz", ".so", ".pyd", ".dll", ".exe")
# leading bytes of zip (wheels, eggs), gzip, bzip2, xz, 7z, ELF, Windows and Mach-O executables
MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"\x7fELF", b"MZ",
         b"\xcf\xfa\xed\xfe")

pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")


def _git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)


def test_13_18_no_tracked_file_is_a_wheel_or_binary_archive():
    tracked = _git("ls-files", "-z").stdout.split("\0")
    binaries = []
    for name in filter(None, tracked):
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        with path.open("rb") as f:
            head = f.read(8)
        if name.endswith(ARCHIVES) or head.startswith(MAGIC):
            binaries.append(name)
    assert binaries == [], f"binary files are tracked (git rm them): {binaries}"


@pytest.mark.parametrize("name", ["line_profiler-5.1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                                  "plugins/typing_extensions-4.16.0-py3-none-any.whl", "dist.tar.gz",
                                  "build.zip"])
def test_13_18_git_ignores_wheels_and_archives(name):
    assert _git("check-ignore", "--no-index", "-q", name).returncode == 0, f"{name} is not ignored"
