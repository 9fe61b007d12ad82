"""
The output file in object storage: where it goes, and how it gets there whole or not at all.

A file is written under a temporary name next to its final path and moved into place
only once complete, so readers never see part of a file: a failure leaves the previous
file (if any) as it was and removes the temporary one. On a local disk the move is an
atomic rename; on object stores it is a server-side copy, after which the object at the
final key is the complete new file.
"""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from glob import escape as glob_escape
from typing import IO, Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from bsg_provider.errors import BsgConfigError

log = logging.getLogger(__name__)

#: Schemes Airflow itself can write, without a provider.
LOCAL_SCHEMES = frozenset({"file", "local"})
#: What to install for the schemes of common object stores.
SCHEME_PACKAGES = {
    "s3": "apache-airflow-providers-amazon[s3fs]",
    "s3a": "apache-airflow-providers-amazon[s3fs]",
    "gs": "apache-airflow-providers-google",
    "gcs": "apache-airflow-providers-google",
    "abfs": "apache-airflow-providers-microsoft-azure",
    "abfss": "apache-airflow-providers-microsoft-azure",
    "adl": "apache-airflow-providers-microsoft-azure",
}
TEMPORARY_MARKER = ".tmp-"
#: A temporary older than this belongs to no live run (see _remove_stale_temporaries).
STALE_TEMPORARY_AGE = timedelta(hours=1)


def output_path(value: Any) -> ObjectStoragePath:
    """
    The output file as an :class:`ObjectStoragePath`, checked to be writable by this Airflow.

    :param value: a URL such as ``file:///data/bsg/2024-05-01.jsonl`` or
        ``s3://aws_default@bucket/bsg/2024-05-01.jsonl.gz`` (``conn_id@`` picks the storage
        connection), or an :class:`ObjectStoragePath`.
    :raises BsgConfigError: naming what is wrong and how to fix it.
    """
    if isinstance(value, ObjectStoragePath):
        path = value
    elif isinstance(value, str):
        text = value.strip()
        if "://" not in text:
            hint = f" such as file://{text}" if text.startswith("/") else ""
            raise BsgConfigError(
                f"output_path {value!r} has no scheme; give a URL{hint} (file:///..., s3://..., gs://...)."
            )
        try:
            path = ObjectStoragePath(text)
        except (TypeError, ValueError) as exc:
            hint = f"; to write {_scheme_of(text)}:// paths, {_remedy(_scheme_of(text))}."
            if "incompatible with ObjectStoragePath" in str(exc):
                # Airflow 3.0's ObjectStoragePath predates universal-pathlib 0.3 (apache/airflow#56369).
                hint = (
                    " This Airflow's ObjectStoragePath needs universal-pathlib older than 0.3: install "
                    "Airflow with its constraints file, or pip install 'universal-pathlib<0.3'."
                )
            raise BsgConfigError(
                f"output_path {value!r} is not a path Airflow can write to: {exc}{hint}"
            ) from None
    else:
        raise BsgConfigError(
            f"output_path must be a URL string or an ObjectStoragePath, got {type(value).__name__}."
        )
    check_filesystem(path)
    is_local = (path.protocol or "file") in LOCAL_SCHEMES
    if not path.name or str(value).endswith("/") or (is_local and path.is_dir()):
        raise BsgConfigError(f"output_path {str(value)!r} names a directory; end it with a file name.")
    return path


def check_filesystem(path: ObjectStoragePath) -> None:
    """
    Make sure Airflow has a filesystem for the path's scheme, before any data is fetched.

    :param path: the output path.
    :raises BsgConfigError: naming the scheme and the package that provides it.
    """
    scheme = path.protocol or "file"
    try:
        path.fs  # noqa: B018 -- resolving the filesystem is the check
    except (ValueError, ImportError) as exc:
        raise BsgConfigError(
            f"Airflow cannot write {scheme}:// paths here ({exc}); {_remedy(scheme)}, "
            "or write to another scheme."
        ) from None


def _scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower()


def _remedy(scheme: str) -> str:
    package = SCHEME_PACKAGES.get(scheme)
    return (
        f"install {package} on the workers"
        if package
        else ("install the Airflow provider that registers it on the workers")
    )


def temporary_sibling(path: ObjectStoragePath) -> ObjectStoragePath:
    """A unique hidden name in the same directory (or bucket prefix) as ``path``."""
    return path.parent / f".{path.name}{TEMPORARY_MARKER}{uuid.uuid4().hex}"


@contextmanager
def atomic_write(path: ObjectStoragePath) -> Iterator[IO[bytes]]:
    """
    A binary file to write; it becomes ``path`` when the block ends without error.

    On error the temporary file is removed and ``path`` keeps its previous content.

    :param path: the final path.
    """
    fs = path.fs
    if (path.protocol or "file") in LOCAL_SCHEMES:
        # Object stores have no directories to create; a local disk does.
        fs.makedirs(path.parent.path, exist_ok=True)
    temporary = temporary_sibling(path)
    # Through the filesystem, not path.open(): Airflow would record the temporary name as lineage.
    try:
        with fs.open(temporary.path, "wb") as handle:
            yield handle
            _sync_to_disk(handle)
        fs.mv(temporary.path, path.path)
        if (path.protocol or "file") in LOCAL_SCHEMES:
            _sync_directory(path.parent.path)
    except BaseException:
        _remove(fs, temporary.path)
        raise
    _remove_stale_temporaries(fs, path)


def _sync_to_disk(handle: Any) -> None:
    """On a local disk, make the data durable before the rename makes it visible."""
    try:
        fileno = handle.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return  # an object store's buffered upload: its commit is the durable step
    handle.flush()
    os.fsync(fileno)


def _sync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable: the new name lives in the directory's own data."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename itself is still atomic
    finally:
        os.close(fd)


def _remove_stale_temporaries(fs: Any, path: ObjectStoragePath) -> None:
    """
    Delete temporaries of ``path`` left by runs that were killed mid-write (SIGKILL, OOM killer).

    Only old ones: another run writing the same path right now (a path without ``{{ ds }}``,
    a zombie task beside its retry) owns a fresh one.
    """
    try:
        leftovers = fs.glob(f"{path.parent.path}/.{glob_escape(path.name)}{TEMPORARY_MARKER}*")
    except Exception:
        return
    cutoff = datetime.now(timezone.utc) - STALE_TEMPORARY_AGE
    for leftover in leftovers:
        try:
            modified = fs.modified(leftover)
        except Exception:
            continue  # age unknown: leave it
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=timezone.utc)
        if modified < cutoff:
            log.warning("Removing %s, left by an earlier run that was killed while writing.", leftover)
            _remove(fs, leftover)


def _remove(fs: Any, temporary: str) -> None:
    try:
        if fs.exists(temporary):
            fs.rm(temporary)
    except Exception:
        log.warning("Could not remove the temporary file %s; delete it by hand.", temporary, exc_info=True)
