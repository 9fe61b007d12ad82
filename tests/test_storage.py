from __future__ import annotations

import os

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath

from bsg_provider.errors import BsgConfigError
from bsg_provider.extraction import storage
from bsg_provider.extraction.storage import atomic_write, output_path, temporary_sibling


def test_a_file_url_becomes_a_path(tmp_path):
    path = output_path(f"file://{tmp_path}/bsg/2024-05-01.jsonl")
    assert isinstance(path, ObjectStoragePath)
    assert path.protocol == "file" and path.name == "2024-05-01.jsonl"
    given = ObjectStoragePath(f"file://{tmp_path}/x.csv")
    assert output_path(given) is given


def test_a_path_without_scheme_is_refused_with_the_url_to_use():
    with pytest.raises(BsgConfigError) as caught:
        output_path("/data/bsg/x.jsonl")
    assert str(caught.value) == (
        "output_path '/data/bsg/x.jsonl' has no scheme; give a URL such as file:///data/bsg/x.jsonl "
        "(file:///..., s3://..., gs://...)."
    )
    with pytest.raises(BsgConfigError, match=r"^output_path must be a URL string or an ObjectStoragePath"):
        output_path(42)


def test_an_object_storage_path_too_old_for_universal_pathlib_says_what_to_install(monkeypatch):
    # What Airflow 3.0.x does with universal-pathlib 0.3: refuse every URL.
    class OutdatedObjectStoragePath(ObjectStoragePath):
        def __new__(cls, *args, **kwargs):
            raise TypeError(
                "ObjectStoragePath(...) detected protocol file which is incompatible with ObjectStoragePath."
            )

    monkeypatch.setattr(storage, "ObjectStoragePath", OutdatedObjectStoragePath)
    with pytest.raises(BsgConfigError) as caught:
        output_path("file:///data/x.jsonl")
    assert str(caught.value).endswith(
        "This Airflow's ObjectStoragePath needs universal-pathlib older than 0.3: install Airflow with its "
        "constraints file, or pip install 'universal-pathlib<0.3'."
    )


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(BsgConfigError, match=r"names a directory; end it with a file name\.$"):
        output_path(f"file://{tmp_path}/bsg/")
    (tmp_path / "existing").mkdir()
    with pytest.raises(BsgConfigError, match=r"names a directory"):
        output_path(f"file://{tmp_path}/existing")


def test_a_scheme_without_filesystem_names_the_package_to_install():
    # No Amazon provider here: Airflow has no s3 filesystem.
    with pytest.raises(BsgConfigError) as caught:
        output_path("s3://aws_default@bucket/bsg/x.jsonl")
    message = str(caught.value)
    assert message.startswith("Airflow cannot write s3:// paths here (")
    assert message.endswith(
        "); install apache-airflow-providers-amazon[s3fs] on the workers, or write to another scheme."
    )


def test_atomic_write_moves_the_complete_file_into_place(tmp_path):
    target = output_path(f"file://{tmp_path}/new/dir/out.jsonl")
    with atomic_write(target) as handle:
        handle.write(b"first\n")
        assert not (tmp_path / "new/dir/out.jsonl").exists(), "nothing at the final path while writing"
        assert [name for name in os.listdir(tmp_path / "new/dir") if ".tmp-" in name]
    assert (tmp_path / "new/dir/out.jsonl").read_bytes() == b"first\n"
    assert os.listdir(tmp_path / "new/dir") == ["out.jsonl"]

    with atomic_write(target) as handle:
        handle.write(b"second\n")
    assert (tmp_path / "new/dir/out.jsonl").read_bytes() == b"second\n"
    assert os.listdir(tmp_path / "new/dir") == ["out.jsonl"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    (tmp_path / "out.csv").write_bytes(b"previous\n")
    target = output_path(f"file://{tmp_path}/out.csv")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_write(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("disk on fire")
    assert (tmp_path / "out.csv").read_bytes() == b"previous\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_temporary_siblings_are_hidden_unique_and_next_to_the_target(tmp_path):
    target = output_path(f"file://{tmp_path}/out.jsonl.gz")
    first, second = temporary_sibling(target), temporary_sibling(target)
    assert first != second
    assert str(first.parent) == str(target.parent)
    assert first.name.startswith(".out.jsonl.gz.tmp-")
