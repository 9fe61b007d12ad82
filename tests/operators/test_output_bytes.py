"""
The operators' output files, byte for byte, against digests recorded before the CPU work of issue 21.

The page paths (whole-page timestamp conversion, one encode call per page, the spool's index)
may change how the bytes are made, never which bytes: each file below is a pinned simulator's
interval (long settled, so no status moves while the test runs) written by the operator, and
its SHA-256 was recorded on commit 84190c1, before those paths were rewritten. A digest that
changes is a changed output format: document it (docs/operator.md, docs/messages.md, CHANGELOG)
and record the new digest in the same commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from bsg_provider.operators.messages import BsgExtractMessagesOperator
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env
from tests.operators.conftest import PINNED_NOW, serving_messages

UTC = timezone.utc
CAMPAIGNS_START, CAMPAIGNS_END = datetime(2024, 8, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
MESSAGES_START, MESSAGES_END = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
PII_KEY = "test-pii-key-bytes-9d2e61c04b7a"
SUFFIXES = ("jsonl", "csv", "jsonl.gz", "csv.gz")

#: (simulator variant, operator arguments, file suffix) -> (records, SHA-256 of the file).
EXPECTED: dict[tuple[str, str, str], tuple[int, str]] = {
    ("UTC plain", "convert=True", "jsonl"): (
        1578,
        "99f2ced06a1c8da2a7ffd27ac569edb58e7fc8a4188477154dc5ba005ca2dee6",
    ),
    ("UTC plain", "convert=True", "csv"): (
        1578,
        "523d96beb8fc0430916f9b0638e61cc36935544be6eb2a1f15ec815f009b50e6",
    ),
    ("UTC plain", "convert=True", "jsonl.gz"): (
        1578,
        "2ecf29e22bf17a66d304ef803fd5d3a7dffbfade4f6db07296eac0c0c5f66161",
    ),
    ("UTC plain", "convert=True", "csv.gz"): (
        1578,
        "082f8cd8824e8fe4664483b9d70c4a415c4399938b3f00f484dc2bcece70b3ef",
    ),
    ("UTC mixed", "convert=True", "jsonl"): (
        1578,
        "99f2ced06a1c8da2a7ffd27ac569edb58e7fc8a4188477154dc5ba005ca2dee6",
    ),
    ("UTC mixed", "convert=True", "csv"): (
        1578,
        "523d96beb8fc0430916f9b0638e61cc36935544be6eb2a1f15ec815f009b50e6",
    ),
    ("UTC mixed", "convert=True", "jsonl.gz"): (
        1578,
        "2ecf29e22bf17a66d304ef803fd5d3a7dffbfade4f6db07296eac0c0c5f66161",
    ),
    ("UTC mixed", "convert=True", "csv.gz"): (
        1578,
        "082f8cd8824e8fe4664483b9d70c4a415c4399938b3f00f484dc2bcece70b3ef",
    ),
    ("Europe/Berlin plain", "convert=True", "jsonl"): (
        1578,
        "3fe718ed2b639d11ff9041966a1ff83b2a02ff32b63918d9fc98239c9e327f9e",
    ),
    ("Europe/Berlin plain", "convert=True", "csv"): (
        1578,
        "c81ce81137f798007927d4418915a662a7e771bd7fc8ba39767f0d62dbc4727e",
    ),
    ("Europe/Berlin plain", "convert=True", "jsonl.gz"): (
        1578,
        "718bdedbd0b038a5bbef0b8c81caec751f37db617e1e65d04ff57e9b2ae66094",
    ),
    ("Europe/Berlin plain", "convert=True", "csv.gz"): (
        1578,
        "8ebf228858fc6ae2d349473fb06bfefd7132288740ab24696c867069d550ac97",
    ),
    ("UTC plain", "convert=False", "jsonl"): (
        1578,
        "2e021ff781849217c70f76c4dcef1878090834b893b3bf95737847bfd080e373",
    ),
    ("UTC plain", "convert=False", "csv"): (
        1578,
        "408c8d90d69baf3f6436a4788489e2eec9f87367b7061fe531d199ed78b065c6",
    ),
    ("UTC plain", "convert=False", "jsonl.gz"): (
        1578,
        "ef0bcbf27816d26a1c94317a80006cff4006fc5a109fc77c48fa36847e0d7f9d",
    ),
    ("UTC plain", "convert=False", "csv.gz"): (
        1578,
        "410359dcf9262608a195f6dfb64c4b54565583677edbfa004f279b608d3fdd33",
    ),
    ("UTC mixed", "convert=False", "jsonl"): (
        1578,
        "991e9eba5a65b452b204fbcd8e674e856caa4dc04cb5e5ae4dafcbaa848623a1",
    ),
    ("UTC mixed", "convert=False", "csv"): (
        1578,
        "1cee0c6ea66d0f3eb2d3420287b55329c85df8774595a7585c2c3b2d1e56e33d",
    ),
    ("UTC mixed", "convert=False", "jsonl.gz"): (
        1578,
        "1b2a536f9272d1499a70a95a1d1e472574afc85af4a00f6e57eaa1144eeefeb8",
    ),
    ("UTC mixed", "convert=False", "csv.gz"): (
        1578,
        "d0ea88ad328bc565c3c2c83269b9c97752ca8c3683d922da973f7ccfee068ded",
    ),
    ("Europe/Berlin plain", "convert=False", "jsonl"): (
        1578,
        "a9e828656386c2c8a5bf142f458b4750cfc97f21ec19d4b0f9acd8b120b6e615",
    ),
    ("Europe/Berlin plain", "convert=False", "csv"): (
        1578,
        "a45b919edf5bd269eed9faa976b7923ea5c412e2c10a90c5d330f77f56198fa3",
    ),
    ("Europe/Berlin plain", "convert=False", "jsonl.gz"): (
        1578,
        "0e73d5275cd922c8b11092ab2a9cb65e3e177556da8ed7f597efc53424f458e5",
    ),
    ("Europe/Berlin plain", "convert=False", "csv.gz"): (
        1578,
        "3399e69527add4f77f8a073b24bb1a1bbd9f48db7f6dc458b03a7637e587022a",
    ),
    ("messages", "defaults", "jsonl"): (
        2360,
        "1f49bc0fb0acf15d721d96b3725dfc5c8ee0669cdbc66a87bc5543f39abf0ed0",
    ),
    ("messages", "defaults", "csv"): (
        2360,
        "67512c6b91163152878046b39a0190da94e483729258f5cb598c09f1032146e8",
    ),
    ("messages", "defaults", "jsonl.gz"): (
        2360,
        "46af774ac974d8d312f5ad3af4eca3f1ea22a99566e8bf060426e871d63c481e",
    ),
    ("messages", "defaults", "csv.gz"): (
        2360,
        "1791d892c189284a9de86828716365059e3e2c6c66a21a545993b30d0809154c",
    ),
    ("messages", "phone=keep,text=keep", "jsonl"): (
        2360,
        "06683029db6def8de4b8c0616b2378530291117f26725da1fdc03fad73371a09",
    ),
    ("messages", "phone=keep,text=keep", "csv"): (
        2360,
        "76ab396560e0f1afe6ed6a98724d8e57f9c1f5a7ba2ecb96c1b17cf746232a67",
    ),
    ("messages", "phone=keep,text=keep", "jsonl.gz"): (
        2360,
        "83ac693646c04b918bb7bad294133763b7f9fc4d23abec69832a4f611b5ca422",
    ),
    ("messages", "phone=keep,text=keep", "csv.gz"): (
        2360,
        "f533ab35e0ace630b11416d0595fe55dc145abfe38434c970aa41ce79164fbc9",
    ),
    ("messages", "phone=drop", "jsonl"): (
        2360,
        "6040caa2a534519c3ed091de2825028ec66beef90ec6c05348515c1870fa5fb7",
    ),
    ("messages", "phone=drop", "csv"): (
        2360,
        "25bdd30ad18213b49c861eadc4861c59104029b8dda4818c43f8c3efa56218a3",
    ),
    ("messages", "phone=drop", "jsonl.gz"): (
        2360,
        "deb50a2e7210bc1a338d05bb5f9f1485ffc3698e96da2a4ab78c1b6f667feadd",
    ),
    ("messages", "phone=drop", "csv.gz"): (
        2360,
        "40b4d0e33ae586c5d55dd036cfa2f969e3d492a06a29e7d44a9c91b054a8146f",
    ),
}


@pytest.fixture
def campaigns_conn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    tz, timestamp_format = request.param
    with BsgSimulator(
        campaigns=4000,
        seed=23,
        api_key="test_bytes_key_1234",
        now=PINNED_NOW,
        timezone=tz,
        timestamp_format=timestamp_format,
    ) as sim:
        extra: dict[str, Any] = {"api_timezone": tz} if tz != "UTC" else {}
        name, value = bsg_connection_env(
            "bsg_bytes", host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS, **extra
        )
        monkeypatch.setenv(name, value)
        yield f"{tz} {timestamp_format}"


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    "campaigns_conn",
    [("UTC", "plain"), ("UTC", "mixed"), ("Europe/Berlin", "plain")],
    indirect=True,
    ids=["utc-plain", "utc-mixed", "berlin-plain"],
)
@pytest.mark.parametrize("convert", [True, False], ids=["converted", "raw-timestamps"])
def test_campaign_files_are_byte_for_byte_those_of_before(campaigns_conn, convert, suffix, tmp_path):
    path = tmp_path / f"campaigns.{suffix}"
    summary = BsgExtractCampaignsOperator(
        task_id="bytes",
        output_path=path.as_uri(),
        bsg_conn_id="bsg_bytes",
        start=CAMPAIGNS_START,
        end=CAMPAIGNS_END,
        convert_timestamps=convert,
    ).execute({})
    got = (summary["records"], digest_of(path))
    key = (campaigns_conn, f"convert={convert}", suffix)
    assert got[0] > 500, "too few campaigns to exercise whole pages"
    assert got == EXPECTED[key], key


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    "modes", [{}, {"phone": "keep", "text": "keep"}, {"phone": "drop"}], ids=["defaults", "keep", "drop"]
)
def test_message_files_are_byte_for_byte_those_of_before(monkeypatch, modes, suffix, tmp_path):
    path = tmp_path / f"messages.{suffix}"
    with serving_messages(monkeypatch, "bsg_bytes_msg", PII_KEY, seed=31, messages_per_campaign=40):
        summary = BsgExtractMessagesOperator(
            task_id="bytes",
            output_path=path.as_uri(),
            bsg_conn_id="bsg_bytes_msg",
            start=MESSAGES_START,
            end=MESSAGES_END,
            **modes,
        ).execute({})
    got = (summary["records"], digest_of(path))
    key = ("messages", ",".join(f"{k}={v}" for k, v in sorted(modes.items())) or "defaults", suffix)
    assert got[0] > 500, "too few messages to exercise whole pages"
    assert got == EXPECTED[key], key
