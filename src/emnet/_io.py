"""Atomic file output shared by every system: nothing is ever left half-written.

A file is written to a temporary sibling and moved into place with :func:`os.replace`,
which is atomic on POSIX; a directory is built under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` defaults to ``path``'s own suffix (so libraries that pick a format by
    extension, like matplotlib or numpy, still see it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text(
        path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    )


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def savefig(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format from ``path``'s suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``path`` as a whole.

    An existing ``path`` is swapped out only after the new one is complete, so a failure
    at any point leaves the previous contents intact.
    """
    path = _abs(path, "path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_writable_dir(path: str | os.PathLike[str], arg: str = "--out") -> Path:
    """Create ``path`` if needed and check it is a writable directory, else ValueError."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{arg}: {path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".emnet-write-probe"):
            pass
    except OSError as exc:
        raise ValueError(f"{arg}: cannot write to directory {path} ({exc.strerror})") from None
    return path


def check_new_files(
    paths: list[Path], *, force: bool = False, arg: str = "--out", force_flag: str = "--force"
) -> None:
    """For commands that write a few named files into a user's folder (``emnet grad``,
    ``emnet train-demo``): a ValueError if any of ``paths`` exists already, unless
    ``force`` — emnet cannot tell its own earlier picture from a user's file of that
    name, so it replaces neither without being told."""
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise ValueError(
            f"{arg}: {names} already exists; pass {force_flag} to replace it, or choose "
            f"another {arg}"
        )
    for p in existing:
        if p.is_dir():
            raise ValueError(f"{arg}: {p} is a directory; choose another {arg}")


# ---------------------------------------------------------------------- owned directories
#
# emnet owns an output directory only if it wrote the marker MARKER into it: the command,
# its configuration and the list of files that run wrote. It refuses a non-empty directory
# without the marker, refuses another configuration unless forced, and only ever replaces
# or removes the files its marker lists, never a file it did not write.

MARKER = ".emnet-run.json"
#: every staging directory gets this file first: who made it (pid, host), so a later run
#: can tell a stale staging directory of emnet's from anything else.
_SENTINEL = ".emnet-stage.json"
#: written into a staging directory once it is complete: from then on it is moved into
#: place, and a run that finds it after a kill finishes the move (roll forward).
_COMMIT = ".emnet-commit"
#: staging directories: D/.emnet-stage-XXXX inside an existing D, parent/.<D>.emnet-stage-XXXX
#: beside a D that does not exist yet.
_STAGE = ".emnet-stage-"
_MKSTEMP = r"[a-z0-9_]{8}"  # tempfile's random part (atomic_path, check_writable_dir)


def _abs(path: str | os.PathLike[str], arg: str) -> Path:
    """``path`` made absolute without following links (so ``.`` has a name and a parent)."""
    text = os.fspath(path)
    if not str(text).strip():
        raise ValueError(f"{arg}: expected a directory name, got {text!r}")
    absolute = Path(os.path.abspath(text))
    if absolute == absolute.parent:
        raise ValueError(f"{arg}: {text} is a file system root; choose a directory inside it")
    return absolute


def _normalized(config: Any) -> Any:
    """``config`` as it reads back from JSON (tuples become lists, numpy numbers floats)."""
    return json.loads(json.dumps(config, default=_json_default))


def _safe_rel(rel: Any) -> str | None:
    """A relative path inside a directory (no absolute path, no ``..``), else None."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return None
    parts = Path(rel).parts
    if Path(rel).is_absolute() or any(p in ("..", ".", "") for p in parts):
        return None
    return Path(rel).as_posix()


def read_marker(directory: str | os.PathLike[str], arg: str = "--out") -> dict[str, Any] | None:
    """The marker of an emnet output directory, or None when there is none.

    A marker that cannot be read or is not one of emnet's is a ValueError naming it: the
    directory is then treated as not emnet's (nothing in it is replaced).
    """
    path = Path(directory) / MARKER
    if not path.exists() and not path.is_symlink():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(
            f"{arg}: {path} cannot be read ({error_reason(exc)}); emnet does not know which files "
            "in it are its own: remove the directory or choose another one"
        ) from None
    files = marker.get("files") if isinstance(marker, dict) else None
    if (
        not isinstance(marker, dict)
        or not isinstance(marker.get("command"), str)
        or "config" not in marker
        or not isinstance(files, list)
        or any(_safe_rel(f) is None for f in files)
    ):
        raise ValueError(
            f"{arg}: {path} is not an emnet marker (expected an object with command, config "
            "and a list of relative file names); remove the directory or choose another one"
        )
    return marker


def error_reason(exc: BaseException) -> str:
    """An exception in one short phrase: an OSError's strerror, else its message's first
    line, else its type's name."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _describe_difference(old: dict[str, Any], command: str, config: Any) -> str | None:
    """None when ``old`` (a marker) is the same command and configuration, else why not."""
    if old["command"] != command:
        return f"it holds the output of `emnet {old['command']}`, not `emnet {command}`"
    new, before = _normalized(config), old["config"]
    if new == before:
        return None
    if isinstance(new, dict) and isinstance(before, dict):
        for key in [*before, *(k for k in new if k not in before)]:
            if before.get(key) != new.get(key):
                was = repr(before[key]) if key in before else "not given (its default)"
                now = repr(new[key]) if key in new else "not given (its default)"
                return f"{key} was {was}, now {now}"
    return f"the configuration was {before!r}, now {new!r}"


def check_output_dir(
    target: str | os.PathLike[str],
    command: str,
    config: Any,
    *,
    force: bool = False,
    arg: str = "--out",
    force_flag: str = "--force",
    adopt: Any = None,
) -> dict[str, Any] | None:
    """Check that emnet may write the output of ``command`` with ``config`` to ``target``.

    Returns the directory's current marker (None for a new or empty directory). Raises a
    ValueError naming ``arg`` and the directory when ``target`` is a file, a non-empty
    directory without emnet's marker, or (unless ``force``) emnet's output of another
    command or configuration. Stale temporaries emnet left there are removed first.
    ``adopt(target)``, if given, may return ``(config, files)`` of an output of
    ``command`` written before markers existed, to treat that directory as emnet's.
    """
    shown = Path(target)  # messages name the directory as the user wrote it
    target = _abs(target, arg)
    try:
        exists = target.is_dir()
        if not exists and (target.exists() or target.is_symlink()):
            raise ValueError(f"{arg}: {shown} exists and is not a directory")
    except OSError as exc:  # e.g. a name too long, a parent that is a file
        raise ValueError(f"{arg}: cannot use {shown} ({error_reason(exc)})") from None
    clean_stale(target)
    if not exists:
        _check_creatable(target, shown, arg)
        return None
    marker = read_marker(target, arg)
    if marker is None:
        adopted = adopt(target) if adopt is not None else None
        if adopted is not None:
            config_before, files = adopted
            marker = {"command": command, "config": config_before, "files": files}
        else:
            entries = sorted(os.listdir(target))
            if entries:
                listing = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
                raise ValueError(
                    f"{arg}: {shown} is a non-empty directory that does not hold an emnet "
                    f"{command} result (no {MARKER}; it holds {listing}); refusing to write "
                    "into it: choose a new or empty directory"
                )
            return None
    why = _describe_difference(marker, command, config)
    if why is not None and not force:
        raise ValueError(
            f"{arg}: {shown} holds emnet results of a different configuration ({why}); "
            f"use {force_flag} to replace them, or choose another directory"
        )
    clean_stale(target, marker["files"])
    return marker


def _check_creatable(target: Path, shown: Path, arg: str) -> None:
    """A ValueError unless the nearest existing folder above ``target`` is a writable
    directory (so a file in the path, or a read-only folder, is named before any work)."""
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        if ancestor.is_symlink():  # a dangling link
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{arg}: cannot create {shown}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{arg}: cannot create {shown}: {ancestor} is not writable")


def _pid_alive(pid: Any, host: Any) -> bool:
    import socket

    if not isinstance(pid, int) or host != socket.gethostname():
        return True  # another machine's, or unknown: leave it alone
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _stale_stage(path: Path) -> bool:
    """Whether ``path`` is a staging directory of an emnet process that no longer runs."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        info = json.loads((path / _SENTINEL).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(info, dict) and not _pid_alive(info.get("pid"), info.get("host"))


def clean_stale(target: str | os.PathLike[str], files: Any = ()) -> list[Path]:
    """Remove the temporaries a killed emnet run left at ``target``; return what it removed.

    That is: staging directories of dead emnet processes (inside ``target``, or next to it
    for a ``target`` that did not exist yet; a complete one inside is first moved into
    place), and the temporaries of atomic writes (``.<name>.XXXXXXXX<suffix>``) of the
    files ``files`` (relative to ``target``) emnet writes there. Nothing else is touched.
    """
    import re

    target = Path(target)
    removed: list[Path] = []
    parent = target.parent
    sibling = re.compile(rf"^\.{re.escape(target.name)}{re.escape(_STAGE)}{_MKSTEMP}$")
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            if sibling.match(entry.name) and _stale_stage(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    if not target.is_dir():
        return removed
    inside = re.compile(rf"^{re.escape(_STAGE)}{_MKSTEMP}$")
    with contextlib.suppress(OSError):
        for entry in target.iterdir():
            if inside.match(entry.name) and _stale_stage(entry):
                if (entry / _COMMIT).exists():
                    _finish_commit(entry, target)
                else:
                    shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    folders: dict[Path, set[str]] = {}
    for rel in [*files, MARKER]:
        rel = _safe_rel(rel)
        if rel is not None:
            p = target / rel
            folders.setdefault(p.parent, set()).add(p.name)
    folders.setdefault(target, set())
    for folder, names in folders.items():
        patterns = [re.compile(rf"^\.emnet-write-probe{_MKSTEMP}$")]
        patterns += [
            re.compile(rf"^\.{re.escape(n)}\.{_MKSTEMP}{re.escape(Path(n).suffix)}$") for n in names
        ]
        with contextlib.suppress(OSError):
            for entry in folder.iterdir():
                if any(p.match(entry.name) for p in patterns) and entry.is_file():
                    with contextlib.suppress(OSError):
                        entry.unlink()
                        removed.append(entry)
    stray = target / _SENTINEL  # a kill between renaming a new stage into place and this
    if stray.is_file() and (target / MARKER).is_file():
        with contextlib.suppress(OSError):
            stray.unlink()
            removed.append(stray)
    return removed


def _make_stage(folder: Path, prefix: str) -> Path:
    import socket

    stage = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    os.chmod(stage, 0o777 & ~_umask())
    (stage / _SENTINEL).write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname()}), encoding="utf-8"
    )
    return stage


def _staged_files(stage: Path) -> list[str]:
    skip = {_SENTINEL, _COMMIT, MARKER}
    files = []
    for root, _dirs, names in os.walk(stage):
        for name in names:
            rel = (Path(root) / name).relative_to(stage).as_posix()
            if rel not in skip:
                files.append(rel)
    return sorted(files)


def _marker(command: str, config: Any, files: list[str]) -> dict[str, Any]:
    from emnet import __version__

    return {
        "written_by": f"emnet {__version__}",
        "note": "emnet owns this directory: it replaces only the files listed here",
        "command": command,
        "config": _normalized(config),
        "files": sorted(files),
    }


def _conflicts(target: Path, new_files: list[str], old_files: list[str]) -> list[Path]:
    """Paths in ``target`` a commit would replace that emnet did not write."""
    old = set(old_files)
    bad = []
    for rel in new_files:
        dst = target / rel
        for ancestor in list(Path(rel).parents)[:-1]:  # the folders inside target
            a = target / ancestor
            if a.is_symlink() or (a.exists() and not a.is_dir()):
                bad.append(a)
        if (dst.exists() or dst.is_symlink()) and (rel not in old or dst.is_dir()):
            bad.append(dst)
    return bad


def _remove_file(target: Path, rel: str) -> None:
    """Remove emnet's file ``target/rel`` (never a folder), then folders it left empty."""
    path = target / rel
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    folder = path.parent
    while folder != target and target in folder.parents:
        try:
            folder.rmdir()  # only succeeds when empty: a user's file keeps its folder
        except OSError:
            break
        folder = folder.parent


def _finish_commit(stage: Path, target: Path) -> None:
    """Move a complete staging directory's files into ``target`` (idempotent: a run that
    finds a half-moved one after a kill finishes it)."""
    new = json.loads((stage / MARKER).read_text(encoding="utf-8"))
    try:
        old = read_marker(target)
    except ValueError:
        old = None
    old_files = old["files"] if old else []
    new_files = [f for f in (_safe_rel(f) for f in new["files"]) if f is not None]
    for rel in new_files:
        src, dst = stage / rel, target / rel
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    for rel in old_files:
        if rel not in new_files:
            _remove_file(target, rel)
    os.replace(stage / MARKER, target / MARKER)
    shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C back for the few renames of a commit, then deliver it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    except ValueError:  # pragma: no cover - not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created (outermost first)."""
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    created = []
    for p in reversed(missing):
        try:
            p.mkdir()
        except FileExistsError:
            continue
        created.append(p)
    return created


def _remove_created(created: list[Path]) -> None:
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            break


@contextlib.contextmanager
def owned_output(
    target: str | os.PathLike[str],
    command: str,
    config: Any,
    *,
    force: bool = False,
    arg: str = "--out",
    force_flag: str = "--force",
) -> Iterator[Path]:
    """Write the output of ``command`` with ``config`` into the directory ``target``.

    Checks ownership first (:func:`check_output_dir`: a ValueError before any work), then
    yields an empty staging directory to write every output file into. When the block
    succeeds the staged files are moved into place with the marker listing them: a new
    ``target`` is the staging directory renamed; into an existing one (emnet's own, or
    empty) each file is moved, the previous run's files that the new one did not write
    are removed, and the marker is moved last, with Ctrl-C held back for those renames (a
    kill in between is finished by the next run). Files emnet did not write are never
    replaced or removed: one where a new file would go is a ValueError. When the block
    fails, the staging directory and any folder created for ``target`` are removed, and
    ``target`` is as it was.
    """
    shown = Path(target)
    old = check_output_dir(target, command, config, force=force, arg=arg, force_flag=force_flag)
    target = _abs(target, arg)
    old_files = old["files"] if old else []
    exists = target.is_dir()
    created: list[Path] = []
    try:
        if exists:
            stage = _make_stage(target, _STAGE)
        else:
            created = _make_parents(target.parent)
            stage = _make_stage(target.parent, f".{target.name}{_STAGE}")
    except OSError as exc:
        _remove_created(created)
        where = shown if exists else shown.parent
        raise ValueError(f"{arg}: cannot write to {where} ({error_reason(exc)})") from None
    committing = False
    try:
        yield stage
        files = _staged_files(stage)
        write_json(stage / MARKER, _marker(command, config, files))
        if not exists:
            os.rename(stage, target)  # the new directory appears complete, or not at all
            with contextlib.suppress(OSError):
                (target / _SENTINEL).unlink()
            return
        bad = _conflicts(target, files, old_files)
        if bad:
            raise ValueError(
                f"{arg}: {bad[0]} was not written by emnet; refusing to replace it (move it "
                "away or choose another directory)"
            )
        with _sigint_deferred():
            (stage / _COMMIT).write_text("", encoding="utf-8")
            committing = True
            _finish_commit(stage, target)
    except BaseException:
        if not committing:  # a half-moved commit stays for the next run to finish
            shutil.rmtree(stage, ignore_errors=True)
            _remove_created(created)
        raise


def claim_dir(
    target: str | os.PathLike[str],
    command: str,
    config: Any,
    files: list[str],
    *,
    force: bool = False,
    arg: str = "--out",
    force_flag: str = "--force",
    adopt: Any = None,
) -> Path:
    """Take ``target`` for a run that writes ``files`` into it in place (a resumable run
    that checkpoints as it goes), under the same rules as :func:`owned_output`.

    The same configuration resumes: nothing is removed. Another one (only with ``force``)
    first removes the files the previous run's marker lists. The marker for this run is
    written before returning; ``files`` (relative paths) are all the files the run may
    write. A file in the way that emnet did not write is a ValueError.
    """
    shown = Path(target)
    old = check_output_dir(
        target, command, config, force=force, arg=arg, force_flag=force_flag, adopt=adopt
    )
    target = _abs(target, arg)
    old_files = old["files"] if old else []
    files = sorted({f for f in (_safe_rel(f) for f in files) if f is not None})
    same = old is not None and _describe_difference(old, command, config) is None
    if old is not None and not same:  # forced: the previous run's files go first
        for rel in old_files:
            _remove_file(target, rel)
        old_files = []
    bad = _conflicts(target, files, old_files)
    if bad:
        raise ValueError(
            f"{arg}: {bad[0]} was not written by emnet; refusing to replace it (move it "
            "away or choose another directory)"
        )
    created: list[Path] = []
    try:
        created = _make_parents(target)
        write_json(target / MARKER, _marker(command, config, sorted({*files, *old_files})))
    except OSError as exc:
        _remove_created(created)
        raise ValueError(f"{arg}: cannot write to {shown} ({error_reason(exc)})") from None
    return target


@contextlib.contextmanager
def run_lock(target: str | os.PathLike[str], arg: str = "--out") -> Iterator[None]:
    """Hold the one lock of output directory ``target`` for a whole run: a second emnet
    run into the same directory is refused up front (a ValueError naming ``arg`` and the
    holder's pid), before it fits anything. The lock is an advisory ``flock`` on a file in
    the system's temporary directory named by the target's absolute path, so nothing is
    written next to the user's files and a killed run releases it."""
    import fcntl
    import hashlib

    key = hashlib.sha256(str(_abs(target, arg)).encode("utf-8", "surrogateescape")).hexdigest()
    folder = Path(tempfile.gettempdir()) / "emnet-locks"
    folder.mkdir(mode=0o1777, exist_ok=True)
    fd = os.open(folder / f"{key[:32]}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise ValueError(
                f"{arg}: another emnet run (pid {holder}) is writing into {target}; wait for "
                "it to finish or choose another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)
