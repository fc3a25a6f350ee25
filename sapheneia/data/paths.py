"""Local paths, confined to the data directory.

Every candidate the caller's string could mean is resolved (symlinks followed) and must lie inside
the resolved data directory, checked before looking at whether it exists, so a refusal says
nothing about files outside. Messages never show the server's own paths.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from sapheneia.errors import InvalidInput, PayloadTooLarge, SourceForbidden, SourceNotFound

UPLOADS = "uploads"


def candidates(source: str, data_dir: Path) -> list[Path]:
    """What ``source`` may mean, in the order tried.

    A bare file name is also looked for in ``data_dir/uploads``, and a path that starts with the
    data directory's own folder name (``data/uploads/x.csv``) is also read relative to its parent:
    both are how the earlier product resolved paths.
    """
    given = Path(source)
    if given.is_absolute():
        return [given]
    found = [data_dir / given]
    if len(given.parts) == 1:
        found.append(data_dir / UPLOADS / given)
    if len(given.parts) > 1 and given.parts[0] == data_dir.name:
        found.append(data_dir.parent / given)
    return found


def resolve_local(source: str, data_dir: Path) -> Path:
    """The file ``source`` names inside ``data_dir``; SourceForbidden if it leads outside."""
    if not source.strip() or "\x00" in source:
        raise InvalidInput("the data source is empty or not a valid path")
    root = data_dir.resolve()
    resolved = []
    for candidate in candidates(source, data_dir):
        try:
            path = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # symlink loops, unreadable parents
            raise SourceForbidden(_outside()) from exc
        if not path.is_relative_to(root):
            raise SourceForbidden(_outside())
        resolved.append(path)
    for path in resolved:
        if path.is_file():
            return path
    if any(path.is_dir() for path in resolved):
        raise InvalidInput(f"'{source}' is a folder; name a file inside it")
    raise SourceNotFound(
        f"no file '{source}' in the data directory; give a path relative to the data directory, "
        "a file name in its uploads folder, or upload the file"
    )


def read_local(source: str, data_dir: Path, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of a confined local file and its name (for the format)."""
    path = resolve_local(source, data_dir)
    size = path.stat().st_size
    if size > max_bytes:
        raise PayloadTooLarge(f"the file is {_mib(size)}; the limit is {_mib(max_bytes)}")
    with path.open("rb") as handle:
        content = handle.read(max_bytes + 1)  # the file may grow between stat and read
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"the file is over the limit of {_mib(max_bytes)}")
    return content, PurePath(path).name


def _outside() -> str:
    return (
        "the path leads outside the data directory; give a path relative to the data directory "
        "(or a file name in its uploads folder), or upload the file"
    )


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"
