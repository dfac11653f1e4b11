"""A survey project on disk: ``survey.toml``, ``forms/``, ``data/``, ``out/`` and the store.

:func:`init_project` makes the folder; :class:`Project` opens one (from the folder or
any folder below it), validating the configuration and giving the paths and the
store to the stages. The same object serves the command line and Python users.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from survey.config import CONFIG_FILE, Config, default_config_text, load_config
from survey.errors import ConfigError
from survey.store import STORE_FILE, Store

__all__ = ["Project", "bundled_forms", "init_project"]

#: Sub-folders of a project.
FOLDERS = ("forms", "data", "out")


def bundled_forms() -> list[Path]:
    """The questionnaires (XLSForms) shipped with the ``instruments`` package.

    Returns an empty list while the package ships none.
    """
    try:
        forms = resources.files("instruments") / "forms"
    except ModuleNotFoundError:
        return []
    if not forms.is_dir():
        return []
    return sorted(Path(str(f)) for f in forms.iterdir() if f.name.endswith(".xlsx"))


@dataclass(frozen=True)
class Project:
    """An opened project folder.

    Parameters
    ----------
    root
        The project folder (holding ``survey.toml``).
    config
        Its validated configuration.

    Examples
    --------
    >>> p = Project.open("my-survey")                          # doctest: +SKIP
    >>> with p.store() as st:                                   # doctest: +SKIP
    ...     frame = st.read("frame")
    """

    root: Path
    config: Config

    @classmethod
    def open(cls, directory: str | Path = ".") -> Project:
        """Open the project in ``directory`` or the nearest folder above it.

        Raises
        ------
        ConfigError
            If no ``survey.toml`` is found, or it is invalid.
        """
        start = Path(directory).resolve()
        for folder in (start, *start.parents):
            if (folder / CONFIG_FILE).is_file():
                return cls(root=folder, config=load_config(folder / CONFIG_FILE))
        raise ConfigError(f"no {CONFIG_FILE} in {start} or any folder above it",
                          file=str(start / CONFIG_FILE),
                          hint="run `survey init DIR` to make a project, or cd into one")

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def store_file(self) -> Path:
        return self.root / STORE_FILE

    @property
    def forms_dir(self) -> Path:
        return self.root / "forms"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def out_dir(self) -> Path:
        """Where results go (``[output] directory``), created on first use."""
        p = self.config.path(self.config.output.directory)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def path(self, relative: str) -> Path:
        """A path from ``survey.toml``, resolved against the project folder."""
        return self.config.path(relative)

    def store(self, *, read_only: bool = False) -> Store:
        """Open the project store (use it as a context manager)."""
        return Store(self.store_file, read_only=read_only)


def init_project(directory: str | Path, country: str = "Demoland", *,
                 exist_ok: bool = False) -> Project:
    """Make a new project folder.

    Writes ``survey.toml`` (commented, with the DotM defaults), ``forms/`` (a copy of
    the bundled questionnaires, when the ``instruments`` package ships them),
    ``data/``, ``out/`` and an empty store ``survey.duckdb``.

    Parameters
    ----------
    directory
        The folder; created if needed. It must not already hold a project.
    country
        Country name written into ``survey.toml``.
    exist_ok
        Keep an existing ``survey.toml`` and store instead of refusing (forms that
        are already there are not overwritten).

    Raises
    ------
    ConfigError
        If the folder already holds a project (and ``exist_ok`` is False), or the
        folder cannot be written.
    """
    root = Path(directory)
    cfg_file = root / CONFIG_FILE
    if cfg_file.exists() and not exist_ok:
        raise ConfigError("this folder already holds a survey project", file=str(cfg_file),
                          hint="choose a new folder; nothing was changed")
    if root.exists() and not root.is_dir():
        raise ConfigError("not a folder", file=str(root), hint="give a folder name for the project")
    text = default_config_text(country)  # validates the name before anything is written
    try:
        for sub in FOLDERS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        if not cfg_file.exists():
            cfg_file.write_text(text, encoding="utf-8")
        for form in bundled_forms():
            target = root / "forms" / form.name
            if not target.exists():
                shutil.copyfile(form, target)
    except OSError as err:
        raise ConfigError(f"cannot write the project folder ({err.strerror})", file=str(root),
                          hint="check the path and that you may write there") from None
    Store(root / STORE_FILE, create=True).close()
    return Project.open(root)
