"""A throwaway virtual environment for installing plugin packages the way users do, offline and fast.

It is created without pip and sees this environment's packages through a ``.pth`` file (so vcframe-core,
torch and the reference plugins need no reinstall); packages go in with this environment's pip, as
``pip --python VENV install --no-deps --no-build-isolation --no-index``. Nothing touches the network, and
nothing installed there is visible here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PluginVenv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @classmethod
    def create(cls, root: Path) -> PluginVenv:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site_packages = root / "lib" / version / "site-packages"
        parents = [
            path for path in sys.path if path.endswith(("site-packages", "dist-packages")) and Path(path).is_dir()
        ]
        lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in parents)
        (site_packages / "_vcframe_parent_environment.pth").write_text(lines)
        return cls(root)

    def environment(self) -> dict[str, str]:
        """This process's environment without PYTHONPATH and vcframe settings."""
        keep = {"VCFRAME_SHARED", "VCFRAME_CACHE"}
        environment = {
            key: value
            for key, value in os.environ.items()
            if key != "PYTHONPATH" and (not key.startswith("VCFRAME_") or key in keep)
        }
        environment.update({"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "COLUMNS": "200"})
        return environment

    def install(self, *packages: Path, workdir: Path | None = None, editable: bool = False) -> list[Path]:
        """Install package folders; with ``workdir``, copies made there (builds write into the folder they
        build, so never point them at the repository). Returns the folders installed."""
        folders = list(packages)
        if workdir is not None:
            folders = [workdir / package.name for package in packages]
            for package, copy in zip(packages, folders, strict=True):
                shutil.copytree(package, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        command = [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet"]
        command += ["--no-deps", "--no-build-isolation", "--no-index"]
        for folder in folders:
            command += ["-e", str(folder)] if editable else [str(folder)]
        result = subprocess.run(command, capture_output=True, text=True, env=self.environment(), timeout=300)
        assert result.returncode == 0, result.stderr + result.stdout
        return folders

    def run(self, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run this environment's python with ``args`` in ``cwd``."""
        return subprocess.run(
            [str(self.python), *args], capture_output=True, text=True, cwd=cwd, env=self.environment(), timeout=timeout
        )
