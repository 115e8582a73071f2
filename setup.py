"""Maps the repository's `core/`, `plugins/` and `alembic/` onto `mnemogate.*`.

pyproject.toml holds all metadata; this file only computes the package list, which setuptools
cannot derive for a renamed source layout from pyproject.toml alone.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

SOURCE_DIRS = {"mnemogate.core": "core", "mnemogate.plugins": "plugins", "mnemogate.alembic": "alembic"}
DATA_PATTERNS = [
    "*.mako",
    "*.json",
    "*.html",
    "*.js",
    "*.css",
    "*.svg",
    "*.txt",
    "*.onnx",
    "*.sql",
    "py.typed",
]

packages: list[str] = []
package_dir: dict[str, str] = {}
for package, directory in SOURCE_DIRS.items():
    package_dir[package] = directory
    packages.append(package)
    # Front-end sources (and their node_modules) are built into the package's static files.
    for sub in find_namespace_packages(directory, exclude=["*__pycache__*", "*node_modules*", "*.frontend*"]):
        packages.append(f"{package}.{sub}")
        package_dir[f"{package}.{sub}"] = str(Path(directory, *sub.split(".")))

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={package: DATA_PATTERNS for package in packages},
)
